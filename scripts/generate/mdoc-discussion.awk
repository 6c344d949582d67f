# Lays out the discussion of a page that generate-manual wrote (the DESCRIPTION's text
# before its first macro) as `--help` shows it: generate-manual copies the text as it is,
# so blank lines (mdoc warns), lines starting with ' or . (taken for macros) and indented
# columns (filled into one paragraph) would not survive groff. Here a blank line becomes .Pp,
# a line in capitals (TOOLS, EXIT STATUS) a subsection, a run of indented lines a literal
# display, and a leading ' or . is escaped. After subsections, the options list gets one of
# its own (OPTIONS); a discussion with its own EXIT STATUS drops mdoc's generic one.
function escape(line) { return line ~ /^['.]/ ? "\\&" line : line }
function close_display() { if (display) { print ".Ed"; display = 0 } }
/^\.Sh DESCRIPTION$/ { print; discussion = 1; start = 1; next }
discussion && /^\./ {
    close_display()
    discussion = 0
    if (subsections && /^\.Bl /) print ".Ss OPTIONS"
}
/^\.Sh "EXIT STATUS"$/ && own_exit_status { skip_ex = 1; next }
/^\.Ex / && skip_ex { skip_ex = 0; next }
!discussion { print; next }
/^$/ { close_display(); if (!start) paragraph = 1; next }
{
    if (paragraph) { print ".Pp"; paragraph = 0 }
    start = 0
    if ($0 ~ /^[A-Z][A-Z ]*[A-Z]$/) {
        close_display()
        print ".Ss \"" $0 "\""
        subsections = 1
        if ($0 == "EXIT STATUS") own_exit_status = 1
        next
    }
    if ($0 ~ /^[ \t]/) {
        if (!display) {
            print ".Bd -literal -offset indent"
            display = 1
            match($0, /^[ \t]+/)
            indent = RLENGTH
        }
        line = $0
        for (i = 0; i < indent && substr(line, 1, 1) ~ /[ \t]/; i++) line = substr(line, 2)
        print escape(line)
        next
    }
    close_display()
    print escape($0)
}
