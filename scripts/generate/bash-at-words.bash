
# (Appended to the generated script by scripts/generate/completions.)
# Host sets start with '@' (@lab, !@lab), and bash splits the words it completes at '@'
# (COMP_WORDBREAKS): cfi-sh run @l<Tab> would reach the generated function as the words
# "@" and "l". This wrapper joins a word to an '@' that it follows without a blank, calls
# the generated function with the joined words, and gives bash back only what follows the
# last '@' of the word it is completing. COMP_WORDBREAKS itself is left as it is.
_cfi-sh_at_words() {
    local rest=$COMP_LINE word
    local -a words=()
    local -i i cword=0 joined
    for i in "${!COMP_WORDS[@]}"; do
        word=${COMP_WORDS[i]}
        joined=0
        if [[ $rest =~ ^[[:space:]]+ ]]; then
            rest=${rest#"${BASH_REMATCH[0]}"}
        elif ((${#words[@]} > 0)) && [[ $word == @* || ${words[-1]} == *@ ]]; then
            joined=1
        fi
        rest=${rest#"$word"}
        if ((joined)); then
            words[-1]+=$word
        else
            words+=("$word")
        fi
        ((i == COMP_CWORD)) && cword=${#words[@]}-1
    done
    local current=${words[cword]} previous=${words[cword - 1]:-}
    local -a COMP_WORDS=("${words[@]}")
    local COMP_CWORD=$cword
    _cfi-sh "$1" "$current" "$previous"
    local prefix=${current%"$2"}
    [[ -z $prefix ]] || COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
}
complete -o filenames -F _cfi-sh_at_words cfi-sh
