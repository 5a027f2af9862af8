# approx.gp — approximation error against cost (`lra approx`): two log-log panels stacked on one
# x axis (attention FLOPs), the relative Frobenius error of the output (top, the main one) and
# KDEformer's spectral error (bottom). Loaded by approx_error.gp, which `lra report` writes. The
# driver sets: datafile (blocks 1..nlines: flops frob_low frob_mean frob_high spectral_low
# spectral_mean spectral_high "value", one per variant, in sweep order; then one block per
# variant with exact points: flops "value"), names (quoted legend titles, one per block), styles
# (line style per block), nlines, exact_tol (a string), decade (of the smallest error), floor_y
# (the row of exact points, below `decade`), the ranges xlo xhi ylo yhi, plot_title, x_label and
# the terminal. Error bars: ± 1 standard deviation over seeds (stochastic variants), the lower
# end clipped at the mean when it would reach 0.
set style line 100 lc rgb '#c8c8c8' lw 1 dt solid
set style line 101 lc rgb '#ececec' lw 1 dt solid
set logscale xy 10
set xrange [xlo:xhi]
set yrange [ylo:yhi]
set format x '%.0s%c'
set format y '%g'
set mxtics 10
set grid xtics ytics mxtics ls 100, ls 101
set border 3
set tics nomirror out
set bars small
# Tics at 1, 2 and 5 per decade only (no tic at the range's ends); on y only from the smallest
# error's decade up: below it sits the "exact" row, labelled on the axis, set off by a dotted rule.
set xtics ()
do for [e=0:15] { set xtics add (10.0**e, 2 * 10.0**e, 5 * 10.0**e) }
if (xhi / xlo < 20) {
    do for [e=0:15] { set xtics add (3 * 10.0**e, 4 * 10.0**e, 6 * 10.0**e, 8 * 10.0**e) }
}
set ytics ("exact" floor_y)
do for [e=-12:3] {
    do for [m in "1 2 5"] {
        t = (m + 0) * 10.0**e
        if (t >= decade * 0.99) { set ytics add (t) }
    }
}
set arrow 1 from graph 0, first sqrt(floor_y * decade) to graph 1, first sqrt(floor_y * decade) \
    nohead lc rgb '#909090' dt 3 lw 1.5
nexact = words(names) - nlines
# gnuplot evaluates a plot clause once even when its `for` range is empty: keep i in range.
st(i) = i >= 1 && i <= words(styles) ? word(styles, i) + 0 : 1
if (nexact > 0) {
    set label 1 sprintf("error ≤ %s: exact, drawn on this row", exact_tol) \
        at graph 0.01, first floor_y offset 0, char 0.9 left tc rgb '#606060' font ',16'
}
set key at screen 0.735, screen 0.84 left top vertical Left reverse samplen 2.5 spacing 1.2 \
    box lc rgb '#c0c0c0' width 1
set label 2 "point labels: the swept value\nbars: ± 1 std over seeds" at screen 0.74, screen 0.56 \
    left tc rgb '#606060' font ',16'
# Panels stacked on a shared x axis; the key and the note, right of them, serve both.
set multiplot layout 2, 1 title plot_title margins screen 0.11, 0.72, 0.115, 0.84 \
    spacing screen 0.075
join(a, b) = a . (strlen(a) && strlen(b) ? ", " : "") . b
# One panel's plot command; `m` is the column of the mean (low, mean, high). Clauses with an
# empty `for` range are left out: gnuplot would still evaluate them once, and warn.
panel(m, key) = join(nlines > 0 ? sprintf("for [i=1:nlines] datafile index (i - 1) using " . \
    "1:%d:%d:%d with yerrorlines ls st(i) %s, for [i=1:nlines] '' index (i - 1) using 1:%d:8 " . \
    "with labels left offset char 0.7, char 0.7 font ',15' tc ls st(i) notitle", m, m - 1, \
    m + 1, key ? "title word(names, i)" : "notitle", m) : "", nexact > 0 ? sprintf("for " . \
    "[i=nlines+1:words(names)] datafile index (i - 1) using 1:(floor_y) with points ls st(i) %s", \
    key ? "title word(names, i)" : "notitle") : "")
set title "output, relative Frobenius error"
set ylabel "‖O − O*‖_F / ‖O*‖_F"
set format x ''
unset xlabel
cmd = panel(3, 1)
plot @cmd
unset label 2
set title "output, spectral error (KDEformer's normalisation)"
set ylabel "‖O − O*‖₂ / (‖P‖₂ ‖V‖₂)"
set format x '%.0s%c'
set xlabel x_label
unset key
cmd = panel(6, 0)
plot @cmd
unset multiplot
