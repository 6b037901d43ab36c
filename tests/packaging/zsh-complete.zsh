#!/bin/zsh -f
# zsh-complete.zsh LINE [FPATH_DIR]: print, one per line, the matches zsh's completion
# system offers at the end of LINE, from an interactive zsh in a pseudo-terminal with
# compinit run on the default $fpath (plus FPATH_DIR first, if given). Modelled on
# zsh-capture-completion: compadd is wrapped to print every match it is given.
zmodload zsh/zpty || exit 70
zpty z zsh -f -i
zpty -w z "PROMPT=''; RPROMPT=''; ${2:+fpath=(${(q)2} \$fpath);} autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits; builtin compadd -A __hits "$@"
  local m; for m in $__hits; do print -r -- "<MATCH>$m"; done
  builtin compadd "$@"
}'
# A NUL line before and after the completion output; then the shell exits.
zpty -w z "null-line() { echo -E - \$'\\0' }; compprefuncs=(null-line); comppostfuncs=(null-line exit)"
zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' insert-tab false"
# Last: from here on Enter no longer runs lines, and Tab completes.
zpty -w z "bindkey '^M' undefined-key; bindkey '^J' undefined-key; bindkey '^I' complete-word"
zpty -n -w z "$1"$'\t'
integer seen=0
local out
while zpty -r z out; do
  if [[ $out == *$'\0'* ]]; then (( seen++ )) && break || continue; fi
  (( seen )) && [[ $out == *'<MATCH>'* ]] && print -r -- "${${out#*<MATCH>}%%$'\r'*}"
done
zpty -d z
