#!/bin/bash
# bash-complete.sh LINE: print, one per line, what bash completion offers at the end of
# LINE for the installed loto, the way an interactive shell would: bash-completion's
# loader finds /usr/share/bash-completion/completions/loto on demand.
#   bash-complete.sh 'loto -L '          -> cpu, net and the configured resources
# Words are split at blanks; a "=" after an option is split off as bash itself does.
set -uo pipefail
# shellcheck source=/dev/null
source /usr/share/bash-completion/bash_completion
line=$1
read -ra words <<<"${line//=/ = }"
[[ $line == *[[:space:]=] ]] && words+=("")
__load_completion loto || { echo "bash-complete.sh: no completion for loto" >&2; exit 1; }
spec=$(complete -p loto) || exit 1
[[ $spec == *"-F _loto "* ]] || { echo "bash-complete.sh: unexpected spec: $spec" >&2; exit 1; }
COMP_WORDS=("${words[@]}")
COMP_CWORD=$((${#words[@]} - 1))
COMP_LINE=$line
COMP_POINT=${#line}
COMPREPLY=()
_loto loto "${words[-1]}" "${words[-2]:-}" 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"
