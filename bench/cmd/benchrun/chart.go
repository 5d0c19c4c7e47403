package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeChart draws results.png: one panel per headline figure, a group of bars per workload and a
// bar per system (the median of its repetitions). Runs that failed or were wrong have no bar.
func writeChart(path string, rep *report) error {
	run := runIndex(rep)
	systems := ranSystems(rep)
	panels := []struct {
		title     string
		workloads []string
		m         metric
		scale     float64
	}{
		{"Throughput, thousand records/s (higher is better)", rep.Params.Workloads, metricThroughput, 1e-3},
		{"CPU s per million records (lower is better)", rep.Params.Workloads, metricCPU, 1},
		{"Peak RSS, MiB (lower is better)", rep.Params.Workloads, metricRSS, 1},
		{fmt.Sprintf("p99 latency at %s events/s, ms (lower is better)", thousands(int64(rep.Params.Rate))), rep.Params.LatencyWorkloads, metricP99, 1},
	}
	const rows, cols = 2, 2
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.Y.Min = 0
		p.Legend.Top = true
		if len(pn.workloads) > 0 {
			top := 0.0
			width := vg.Points(60 / float64(max(len(systems), 1)))
			for j, s := range systems {
				vals := make(plotter.Values, len(pn.workloads))
				for k, w := range pn.workloads {
					if v, ok := run[runKey{s, w, pn.m.phase}].value(pn.m); ok {
						vals[k] = v * pn.scale
						top = max(top, vals[k])
					}
				}
				bars, err := plotter.NewBarChart(vals, width)
				if err != nil {
					return err
				}
				bars.LineStyle.Width = 0
				bars.Color = plotutil.Color(j)
				bars.Offset = width * vg.Length(float64(j)-float64(len(systems)-1)/2)
				p.Add(bars)
				p.Legend.Add(s, bars)
			}
			p.NominalX(pn.workloads...)
			p.Y.Max = top * 1.3 // room for the legend above the bars
		}
		plots[i/cols][i%cols] = p
	}
	img := vgimg.New(vg.Points(1100), vg.Points(760))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(20), PadY: vg.Points(20),
		PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align(plots, tiles, dc)
	for i := range rows {
		for j := range cols {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
