# check-commands.awk — the command finder of check-commands.sh: reads shell scripts and prints
#   C<TAB>name<TAB>file:line   for each word in command position (see check-commands.sh for which)
#   F<TAB>name                 for each function a script defines
#   E<TAB>-<TAB>file:line      where a quote or $( ... ) opened and the file ended before it closed
# A small lexer, not a parser: quotes, $( ), ` `, ${ }, (( )), redirections, heredocs and case
# patterns are understood; what a variable holds at run time is not.
BEGIN {
  SQ = "\047"
  split("if then else elif do while until ! { time", a, " "); for (k in a) OPEN[a[k]] = 1
  split("fi done esac } ]]", a, " "); for (k in a) CLOSE[a[k]] = 1
  split("exec command nohup nice ionice setsid stdbuf chrt timeout xargs env sudo nsenter unshare in-node.sh in-mount-ns.sh", a, " ")
  for (k in a) WRAP[a[k]] = 1
  # options whose argument is the next word
  split("nice:-n ionice:-c ionice:-n timeout:-s timeout:-k xargs:-n xargs:-I xargs:-P xargs:-L xargs:-s xargs:-d xargs:-a xargs:-E env:-u env:-C nsenter:-t nsenter:--target unshare:--propagation chrt:-p", a, " ")
  for (k in a) OPTARG[a[k]] = 1
  FWRAP["wait_for"] = 2; FWRAP["wait_daemon"] = 2; FWRAP["timed"] = 1   # repo functions: N args, then a command
  SHELLRE = "^#!.*(/|[ \t])(ba|da|k|z)?sh([ \t]|$)"
  HDRE = "<<-?[ \t]*[\"" SQ "]?[A-Za-z_][A-Za-z0-9_]*"
}
FNR == 1 { unread(); file = FILENAME; buf = ""; join = ""; inbody = 0; nhd = 0; casepat = 0 }
inbody {
  t = $0; if (hdstrip[hdi]) sub(/^\t+/, "", t)
  if (t == hddelim[hdi]) { if (++hdi > nhd) { inbody = 0; nhd = 0 }; first = 1; next }
  if (first) { if ($0 ~ SHELLRE) hdshell[hdi] = 1; first = 0 }
  if (hdshell[hdi]) process($0, FNR)
  next
}
{
  if (buf == "") start = FNR
  buf = buf join $0
  if (buf ~ /(^|[^\\])(\\\\)*\\$/) { buf = substr(buf, 1, length(buf) - 1); join = " "; next }
  join = "\n"
  if (!process(buf, start)) next          # an open quote or $( ... ): read on
  heredocs(buf); buf = ""; join = ""
  if (nhd > 0) { inbody = 1; hdi = 1; first = 1 }
}
END { unread() }
# unread: a file that ended inside a quote or $( ... ) was not read to its end.
function unread() { if (buf != "") print "E\t-\t" file ":" start; buf = "" }
function heredocs(s,   rest, d) {
  rest = s
  while (match(rest, HDRE)) {
    d = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
    if (substr(rest, 1, 1) == "<" || d ~ /^<<</) continue
    nhd++; hdstrip[nhd] = (d ~ /^<<-/); sub("^<<-?[ \t]*[\"" SQ "]?", "", d); hddelim[nhd] = d
    hdshell[nhd] = (s ~ /(^|[^A-Za-z0-9_.\/-])(ba|da)?sh([ \t][^<]*)?<</)
  }
}
function process(text, ln,   qi) {
  nq = 1; Q[1] = text; qi = 0
  while (qi < nq) {
    qi++
    if (!scan(Q[qi])) { if (qi == 1) return 0; continue }
    analyze(ln)
  }
  return 1
}
function enqueue(s) { if (!NOQ) Q[++nq] = s }
function tok(k, w) { nt++; K[nt] = k; T[nt] = w }
# scan: splits s into tokens T/K ("w" literal word, "x" word with expansions, "o" operator,
# "f" function definition); command substitutions go to the queue. 0 when s ends inside a quote.
function scan(s,   n, i, c, c2, j) {
  nt = 0; n = length(s); i = 1
  while (i <= n) {
    c = substr(s, i, 1); c2 = substr(s, i, 2)
    if (c == " " || c == "\t") { i++; continue }
    if (c == "\n") { tok("o", ";"); i++; continue }
    if (c == "#") { j = index(substr(s, i), "\n"); if (!j) break; i += j - 1; continue }
    if (c2 == "((") { NOQ++; j = closer(s, i + 1); NOQ--; if (!j) return 0; i = j + 2; tok("x", "(("); continue }
    if (c2 == "&&" || c2 == "||" || c2 == ";;" || c2 == "|&") { tok("o", c2); i += 2; continue }
    if (c == "<" || c == ">" || c2 == "&>") {
      if (substr(s, i + 1, 1) == "(") { j = closer(s, i + 1); if (!j) return 0; enqueue(substr(s, i + 2, j - i - 2)); tok("x", "<()"); i = j + 1; continue }
      i++; while (substr(s, i, 1) ~ /[<>&|-]/) i++
      while (substr(s, i, 1) ~ /[ \t]/) i++
      i = word(s, i); if (!i) return 0
      continue
    }
    if (c ~ /[;|&()]/) { tok("o", c); i++; continue }
    i = word(s, i); if (!i) return 0
    if (substr(s, i, 1) ~ /[<>]/ && W ~ /^[0-9]+$/) continue        # 2>file: a descriptor
    if (WP && substr(s, i, 2) == "()") { tok("f", W); i += 2; continue }
    tok(WP ? "w" : "x", W)
  }
  return 1
}
# word: reads one word at i into W (quotes removed), WP = 1 when it has no expansion; returns the
# index after it, 0 when a quote is open.
function word(s, i,   n, c, j) {
  W = ""; WP = 1; n = length(s)
  while (i <= n) {
    c = substr(s, i, 1)
    if (c ~ /[ \t\n;|&()<>]/) break
    if (c == "\\") { W = W substr(s, i + 1, 1); i += 2; continue }
    if (c == SQ) { j = index(substr(s, i + 1), SQ); if (!j) return 0; W = W substr(s, i + 1, j - 1); i += j + 1; continue }
    if (c == "\"") { j = dquote(s, i + 1); if (!j) return 0; W = W substr(s, i + 1, j - i - 1); i = j + 1; continue }
    if (c == "`") { j = index(substr(s, i + 1), "`"); if (!j) return 0; enqueue(substr(s, i + 1, j - 1)); WP = 0; i += j + 1; continue }
    if (c == "$" && substr(s, i + 1, 1) == "(") {
      j = closer(s, i + 1); if (!j) return 0
      if (substr(s, i + 2, 1) != "(") enqueue(substr(s, i + 2, j - i - 2))
      WP = 0; i = j + 1; continue
    }
    if (c == "$" && substr(s, i + 1, 1) == "{") { j = index(substr(s, i), "}"); if (!j) return 0; WP = 0; i += j; continue }
    if (c == "$") WP = 0
    if (c == "=" && substr(s, i + 1, 1) == "(") { j = closer(s, i + 1); if (!j) return 0; W = W "=()"; i = j + 1; continue }
    W = W c; i++
  }
  return i
}
# dquote: index of the quote closing a "..." that starts at i; queues its $( ... ).
function dquote(s, i,   n, c, j) {
  n = length(s)
  while (i <= n) {
    c = substr(s, i, 1)
    if (c == "\\") { i += 2; continue }
    if (c == "\"") return i
    if (c == "$" && substr(s, i + 1, 1) == "(") {
      j = closer(s, i + 1); if (!j) return 0
      if (substr(s, i + 2, 1) != "(") enqueue(substr(s, i + 2, j - i - 2))
      WP = 0; i = j + 1; continue
    }
    if (c == "$") WP = 0
    i++
  }
  return 0
}
# closer: index of the ")" matching the "(" at i, skipping quotes.
function closer(s, i,   n, c, d, j) {
  n = length(s); d = 0; NOQ++
  for (; i <= n; i++) {
    c = substr(s, i, 1)
    if (c == "\\") { i++; continue }
    if (c == "#" && substr(s, i - 1, 1) ~ /^[ \t\n(;]?$/) { j = index(substr(s, i), "\n"); if (!j) break; i += j - 1; continue }
    if (c == SQ) { j = index(substr(s, i + 1), SQ); if (!j) break; i += j; continue }
    if (c == "\"") { j = dquote(s, i + 1); if (!j) break; i = j; continue }
    if (c == "(") d++
    if (c == ")" && --d == 0) { NOQ--; return i }
  }
  NOQ--; return 0
}
function emit(w, ln) {
  if (w ~ /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/ || w ~ /^\/[A-Za-z0-9_.\/+-]+$/) print "C\t" w "\t" file ":" ln
}
# analyze: finds the words of T/K in command position.
function analyze(ln,   i, k, w, expect, mode, wr, skip, dd, j) {
  expect = 1; mode = ""
  for (i = 1; i <= nt; i++) {
    k = K[i]; w = T[i]
    if (k == "o") {
      if (w == ";;") { casepat = 1; mode = ""; continue }
      if (w == ")" && casepat) { casepat = 0; expect = 1; continue }
      if (w == ")") { expect = 0; mode = ""; continue }
      expect = 1; mode = ""; continue
    }
    if (k == "f") { print "F\t" w; expect = 1; continue }
    if (casepat) { if (w == "esac") casepat = 0; continue }
    if (mode == "case") { if (w == "in") { casepat = 1; mode = "" }; continue }
    if (mode == "for" || mode == "done") continue
    if (mode == "test") { if (w == "]]") mode = ""; continue }
    if (mode == "fname") { print "F\t" w; mode = ""; expect = 1; continue }
    if (mode == "shc") { if (w == "-c") mode = "shc2"; continue }
    if (mode == "shc2") { enqueue(w); mode = "done"; continue }
    if (mode == "trap") { if (w !~ /^-/) enqueue(w); mode = "done"; continue }
    if (mode == "find") { if (w ~ /^-(exec|execdir|ok|okdir)$/) { mode = ""; expect = 1 }; continue }
    if (mode == "fwrap") { if (--skip == 0) { mode = ""; expect = 1 }; continue }
    if (mode == "dd") { if (w == "--") { mode = ""; expect = 1 }; continue }
    if (mode == "wrap") {
      if (skip) { skip = 0; continue }
      if (w == "--") { mode = ""; expect = 1; continue }
      if (w ~ /^-/) { if (wr == "command" && w ~ /^-[vV]/) mode = "done"; if ((wr ":" w) in OPTARG) skip = 1; continue }
      if (wr == "env" && w ~ /^[A-Za-z_][A-Za-z0-9_]*=/) continue
      if (wr == "timeout" && !dd) { dd = 1; continue }
      mode = ""; expect = 1; i--; continue
    }
    if (!expect) continue
    if (w ~ /^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=/) continue          # VAR=value
    if (k == "x") { expect = 0; continue }
    if (w in OPEN) continue
    expect = 0
    if (w in CLOSE) { if (w == "esac") casepat = 0; continue }
    if (w == "case") { mode = "case"; continue }
    if (w == "for" || w == "select") { mode = "for"; continue }
    if (w == "function") { mode = "fname"; continue }
    if (w == "[[") { mode = "test"; continue }
    emit(w, ln)
    sub(/.*\//, "", w)
    if (w == "sh" || w == "bash" || w == "dash") mode = "shc"
    else if (w == "trap") mode = "trap"
    else if (w == "find") mode = "find"
    else if (w in FWRAP) { mode = "fwrap"; skip = FWRAP[w] }
    else if (w == "nsenter" || w == "unshare") {
      mode = "wrap"; wr = w; skip = 0
      for (j = i + 1; j <= nt && K[j] != "o"; j++) if (T[j] == "--") mode = "dd"
    } else if (w in WRAP) { mode = "wrap"; wr = w; skip = 0; dd = 0 }
  }
}
