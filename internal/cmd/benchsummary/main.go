// Command benchsummary reads `go test -bench` output on stdin and prints,
// for each benchmark, the median of each reported metric over the runs,
// plus the ratio of each sampling benchmark's time to the one-read
// baseline measured in the same run. Medians and same-run ratios are what
// survive a shared, noisy machine.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func main() {
	values := map[string]map[string][]float64{}
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := strings.TrimPrefix(m[1], "Benchmark")
		if values[name] == nil {
			values[name] = map[string][]float64{}
			order = append(order, name)
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				values[name][f[i+1]] = append(values[name][f[i+1]], v)
			}
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "benchmark\truns\tµs/sample\tsyscalls/sample\t× one read\t")
	for _, name := range order {
		v := values[name]
		us := median(v["µs/sample"])
		ratio := ""
		if i := strings.LastIndex(name, "/"); i >= 0 {
			if base := values[name[:i]+"/oneread"]; base != nil && !strings.HasSuffix(name, "/oneread") {
				ratio = fmt.Sprintf("%.1f", us/median(base["µs/sample"]))
			}
		}
		sys := ""
		if s := v["syscalls/sample"]; len(s) > 0 {
			sys = fmt.Sprintf("%.2f", median(s))
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%s\t%s\t\n", name, len(v["µs/sample"]), us, sys, ratio)
	}
	w.Flush()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
