# bash completion for loto(1)                                    -*- shell-script -*-
#
# Completes options, and resource names for -L/--lock read from the active configuration:
# `loto --list` prints a header line, then one resource per line with its name in the first
# column. A --config typed on the line is passed on; LOTO_CONFIG is inherited. After the
# first word that is not an option (or after --), completion is the command's own.
# Installed as /usr/share/bash-completion/completions/loto (bash-completion >= 2 loads it
# on demand).

# _loto_resources LOTO [CONFIG]: the resource names of the configuration loto would read.
_loto_resources()
{
    local -a args=()
    [[ -n ${2-} ]] && args=(--config "$2")
    "$1" "${args[@]}" --list 2>/dev/null </dev/null | {
        local name rest
        read -r _ || return # the header line
        while read -r name rest; do
            [[ -n $name ]] && printf '%s\n' "$name"
        done
    }
}

_loto()
{
    local cur prev words cword split
    _init_completion -s || return

    # Walk the words before the cursor: the --config given so far, and where the command
    # starts (the first word that is not an option or an option's value, or after --).
    local i word config="" value_of=""
    for ((i = 1; i < cword; i++)); do
        word=${words[i]}
        if [[ -n $value_of ]]; then
            [[ $value_of == --config ]] && config=$word
            value_of=""
            continue
        fi
        case $word in
            --)
                _command_offset $((i + 1))
                return
                ;;
            -L | --lock | -t | --timeout | -E | --conflict-exit-code | --config | --max-runtime | \
                --kill-after | --leftovers)
                value_of=$word
                ;;
            --config=*)
                config=${word#--config=}
                ;;
            --*) ;;
            -*)
                # Bundled short options: a value-taking letter takes the rest of the
                # word, or the next word when it is last (-qL NAME, -wt5).
                local letters=${word#-} j
                for ((j = 0; j < ${#letters}; j++)); do
                    case ${letters:j:1} in
                        L | t | E)
                            ((j == ${#letters} - 1)) && value_of=-${letters:j:1}
                            break
                            ;;
                    esac
                done
                ;;
            *)
                _command_offset $i
                return
                ;;
        esac
    done
    if [[ $config == \~/* ]]; then
        config=$HOME/${config#\~/}
    fi

    # Which option's value is being completed: after "-L NAME" or "-qL NAME" (value_of),
    # "--lock=NAME" (split by _init_completion -s), "-L=NAME" (readline's word starts
    # after the "="), or "-LNAME" (the reply keeps the "-L" in front).
    local option="" prefix=""
    if [[ -n $value_of ]]; then
        option=$value_of
    elif [[ $split == true ]]; then
        option=$prev
    elif [[ $cur == -[LtE]=* ]]; then
        option=${cur:0:2}
        cur=${cur:3}
    elif [[ $cur == -[LtE]?* ]]; then
        option=${cur:0:2}
        prefix=$option
        cur=${cur:2}
    fi

    case $option in
        -L | --lock)
            if [[ $cur == */* || $cur == [.~]* ]]; then
                _filedir
            else
                mapfile -t COMPREPLY < <(compgen -W "$(_loto_resources "$1" "$config")" -- "$cur")
            fi
            ;;
        -t | --timeout)
            mapfile -t COMPREPLY < <(compgen -W "0 0.5 5 250ms 90s 15m 6h" -- "$cur")
            ;;
        --max-runtime | --kill-after)
            mapfile -t COMPREPLY < <(compgen -W "30s 10m 1h 6h" -- "$cur")
            ;;
        --leftovers)
            mapfile -t COMPREPLY < <(compgen -W "leave wait kill" -- "$cur")
            ;;
        -E | --conflict-exit-code)
            : # an exit code 0-255: nothing to suggest
            ;;
        --config)
            _filedir yaml
            ;;
    esac
    if [[ -n $option ]]; then
        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return
    fi

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "-L --lock -w --wait -t --timeout -E
            --conflict-exit-code -s --shared -o --close --max-runtime --kill-after --leftovers
            -q --quiet -v --verbose --config --check-config
            --online --show-config --list --json -h --help -V --version" -- "$cur")
        [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
        return
    fi

    # The command to run.
    _command_offset "$cword"
} &&
    complete -F _loto loto

# ex: filetype=sh
