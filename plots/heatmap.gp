# heatmap.gp — accuracy per task (columns) and variant (rows), loaded by a driver that
# `lra report` writes (accuracy.gp). The driver sets: datafile (columns: x y value label
# has_value), ncols, nrows, avg_from (first average column, -1 for none), plot_title, the
# x and y tic labels, and the terminal.
# Colour range: whole tens around the values (stats runs before any range is set).
set autoscale
stats datafile using ($5 > 0 ? $3 : NaN) nooutput
lo = floor(STATS_min / 10.0) * 10
hi = ceil(STATS_max / 10.0) * 10
if (hi <= lo) hi = lo + 10
set title plot_title
unset key
set xrange [-0.5:ncols - 0.5]
set yrange [-0.5:nrows - 0.5]
set tics scale 0
set xtics offset 0, 0.3
set border 0
# viridis: perceptually uniform and readable in grey and by colour-blind readers
set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', 4 '#fde725')
set cbrange [lo:hi]
set cblabel 'test accuracy (%)'
set cbtics 10
mid = (lo + hi) / 2.0
set style fill solid 1.0 noborder
if (avg_from >= 0) set arrow 1 from avg_from - 0.5, graph 0 to avg_from - 0.5, graph 1 \
    nohead front lw 6 lc rgb 'white'
plot datafile using 1:($5 > 0 ? $2 : NaN):(0.5):(0.5):3 with boxxyerror fc palette, \
     '' using 1:($5 > 0 ? NaN : $2):(0.5):(0.5) with boxxyerror fc rgb '#e8e8e8', \
     '' using 1:2:4:($5 > 0 && $3 < mid ? 0xffffff : 0x000000) with labels tc rgb variable
