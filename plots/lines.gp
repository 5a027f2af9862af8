# lines.gp — a benchmark quantity against sequence length, one line per variant, log-log.
# Loaded by speed_<mode>.gp and memory_<mode>.gp, which `lra report` writes. The driver sets:
# datafile (one block per variant: length value [min max]), names and styles (one word per
# block: variant name, line style), errbars (1: columns 3-4 are the min and max of repeats),
# plot_title, axis labels, x tics (the benchmarked lengths) and the terminal.
set title plot_title
set logscale xy 2
set logscale y 10
set format y '%g'
set mytics 10
# Grid styles of their own: the default grid line type is dotted and faint in cairo.
set style line 100 lc rgb '#c8c8c8' lw 1 dt solid
set style line 101 lc rgb '#ececec' lw 1 dt solid
set grid xtics ytics mytics ls 100, ls 101
# Labelled tics at 1, 2 and 5 per decade: a log axis over one or two decades needs them.
do for [e=-4:7] { set ytics add (2 * 10.0**e, 5 * 10.0**e) }
set key outside right top vertical Left reverse samplen 2.5 spacing 1.1 box lc rgb '#c0c0c0'
set border 3
set tics nomirror out
set bars small
# Ranges hug the data (no jump to whole decades), with a small margin on every side.
set autoscale fix
set offsets graph 0.04, graph 0.04, graph 0.06, graph 0.06
if (errbars) {
    plot for [i=1:words(names)] datafile index (i - 1) using 1:2:3:4 \
        with yerrorlines ls (word(styles, i) + 0) title word(names, i)
} else {
    plot for [i=1:words(names)] datafile index (i - 1) using 1:2 \
        with linespoints ls (word(styles, i) + 0) title word(names, i)
}
