# bubble.gp — LRA's trade-off chart (LRA paper, Figure 3): speed (x, log scale) against
# accuracy (y), bubble area proportional to peak memory. Loaded by tradeoff_<mode>.gp, which
# `lra report` writes. The driver sets: datafile (columns: "variant" steps_per_s score_percent
# peak_MiB colour_argb style), plot_title, size_title, axis labels and the terminal.
set title plot_title . "\n{/*0.8 " . size_title . "}"
set termoption enhanced
set logscale x 10
set format x '%g'
set mxtics 10
# Grid styles of their own: the default grid line type is dotted and faint in cairo.
set style line 100 lc rgb '#c8c8c8' lw 1 dt solid
set style line 101 lc rgb '#ececec' lw 1 dt solid
set grid xtics ytics mxtics ls 100, ls 101
do for [e=-4:7] { set xtics add (2 * 10.0**e, 5 * 10.0**e) }
set border 3
set tics nomirror out
unset key
set autoscale
stats datafile using 4 nooutput
biggest = STATS_max
stats datafile using 2 nooutput
xlo = STATS_min / 1.6
xhi = STATS_max * 2.2
stats datafile using 3 nooutput
pad = (STATS_max - STATS_min) * 0.15 + 1
set xrange [xlo:xhi]
# Under two decades the 1-2-5 labels are too sparse: label 3, 4, 6 and 8 as well.
if (xhi / xlo < 100) {
    do for [e=-4:7] { set xtics add (3 * 10.0**e, 4 * 10.0**e, 6 * 10.0**e, 8 * 10.0**e) }
}
set yrange [STATS_min - pad:STATS_max + pad]
max_ps = 9.0
size(mib) = max_ps * sqrt(mib / biggest)  # point size scales the diameter: area ∝ memory
plot datafile using 2:3:(size($4)):5 with points pt 7 ps variable lc rgb variable, \
     '' using 2:3:(size($4)):6 with points pt 6 ps variable lw 2 lc variable, \
     '' using 2:3:1 with labels left offset char 1.2, char 0.6 noenhanced
