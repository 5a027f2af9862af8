# curves.gp — training loss (left) and validation accuracy (right) against training step, one
# line per run, coloured by variant. Loaded by curves_<task>.gp, which `lra report` writes. The
# driver sets: datafile (per run i, block 2i-2: step loss; block 2i-1: step accuracy in %),
# names, styles and titled (one word per run: variant, line style, 1 for the first seed of a
# variant, which carries the legend entry), plot_title and the terminal. Points mark the logged
# steps (pointinterval -1: with a gap around each point), so a run evaluated once still shows.
set multiplot title plot_title
set border 3
set tics nomirror out
set style line 100 lc rgb '#c8c8c8' lw 1 dt solid
set grid xtics ytics ls 100
set xlabel 'training step'
# About four labelled steps per axis, at 1, 2 or 5 × a power of ten: auto tics crowd at 22 pt.
stats datafile using 1 nooutput
raw = STATS_max > 0 ? STATS_max / 4.0 : 1
mag = 10.0**floor(log10(raw))
xstep = (raw / mag < 2 ? 1 : raw / mag < 5 ? 2 : 5) * mag
set xtics xstep
set mxtics 2
set xrange [0:*]
set offsets 0, graph 0.03, graph 0.05, graph 0.05  # points on the last step stay visible
set format y '%g'
# Two equal panels on the left 82 %, the legend in the strip on the right.
set lmargin at screen 0.10
set rmargin at screen 0.41
set tmargin at screen 0.88
set bmargin at screen 0.13
unset key
set ylabel 'training loss (cross-entropy)'
plot for [i=1:words(names)] datafile index (2 * i - 2) using 1:2 \
    with linespoints ls (word(styles, i) + 0) lw 2 ps 1 pi -1 notitle
set lmargin at screen 0.51
set rmargin at screen 0.82
set ylabel 'validation accuracy (%)'
set key at screen 0.83, screen 0.88 top left Left reverse samplen 1.5 spacing 1.05
plot for [i=1:words(names)] datafile index (2 * i - 1) using 1:2 \
    with linespoints ls (word(styles, i) + 0) lw 2 ps 1 pi -1 \
    title (word(titled, i) eq '1' ? word(names, i) : '')
unset multiplot
