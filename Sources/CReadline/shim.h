/* CReadline: GNU readline (callback interface, history, completion) for the interactive
   shell. Wrapped by Sources/cfi-sh/LineEditor.swift; nothing else imports it.
   readline.h uses FILE without including <stdio.h> itself, so that comes first. */
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>
