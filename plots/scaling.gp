# scaling.gp — strong scaling of one training run: steps/s against cores (MPI ranks × OpenMP
# threads per rank) for a fixed global batch. Loaded by scaling_<task>_<variant>.gp, which
# `lra report` writes. The driver sets: datafile with three blocks (index 0: MPI ranks × 1
# thread; index 1: 1 rank × OpenMP threads; both start at 1 × 1; index 2: other mixes), each row
# "cores steps_per_s ranks threads allreduce_ms label"; ideal (steps/s of 1 rank × 1 thread, or
# 0 when not measured), xmax, plot_title and the terminal.
set title plot_title
set xlabel "cores (MPI ranks × OpenMP threads per rank)"
set ylabel "training speed (steps/s, global batch fixed)"
set style line 100 lc rgb '#c8c8c8' lw 1 dt solid
set grid xtics ytics ls 100
set key outside right top vertical Left reverse samplen 2.5 spacing 1.1 box lc rgb '#c0c0c0'
set border 3
set tics nomirror out
set xtics 1
set xrange [0.5:xmax + 0.5]
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set style line 1 lc rgb '#0072B2' lw 3 pt 7 ps 1.8
set style line 2 lc rgb '#D55E00' lw 3 pt 5 ps 1.8
set style line 3 lc rgb '#009E73' lw 3 pt 9 ps 1.8
set style line 4 lc rgb '#808080' lw 2 dt 2
plot datafile index 0 using 1:2 with linespoints ls 1 title "MPI ranks × 1 thread", \
     datafile index 1 using 1:2 with linespoints ls 2 title "1 rank × OpenMP threads", \
     datafile index 2 using 1:2 with points ls 3 title "other mixes", \
     datafile index 0 using 1:2:6 with labels offset 0, 1.6 notitle, \
     datafile index 1 using 1:2:6 with labels offset 0, -1.6 notitle, \
     datafile index 2 using 1:2:6 with labels offset 0, 2.8 notitle, \
     (ideal > 0 ? ideal * x : 1/0) with lines ls 4 title "ideal (1 × 1 speed × cores)"
