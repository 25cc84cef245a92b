// Package flamegraph renders a profile as a self-contained interactive
// flame graph: one SVG file with its viewer script inline, which fetches
// nothing, so that it can be mailed, attached to a ticket or opened on an
// air-gapped machine.
//
// The file carries the merged call tree as compact arrays rather than
// pre-drawn rectangles, and the script draws only the frames wide enough to
// see at the current zoom. A profile of hundreds of thousands of unique
// stacks thus stays a few megabytes and opens in a moment, while zooming in
// still shows the frames that were too narrow to draw at full width.
//
// In the viewer, hovering a frame shows its function, file:line and share
// of the samples; a click zooms into it, undone by Reset Zoom or Escape;
// Search (also "/" or Ctrl+F) highlights the frames matching a regular
// expression and shows the share of samples under them.
package flamegraph

import (
	"bufio"
	"cmp"
	_ "embed"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options adjust the graph. The zero value gives the defaults.
type Options struct {
	// Title replaces the title made from the profile's metadata.
	Title string
	// Icicle puts the root at the top instead of the bottom.
	Icicle bool
	// Width is the image width in pixels (default 1200).
	Width int
	// FrameHeight is the height of one frame in pixels (default 16).
	FrameHeight int
	// FontSize is the label size in pixels (default 12).
	FontSize float64
	// MinWidth is the narrowest frame drawn, in pixels at the current
	// zoom (default 0.1).
	MinWidth float64
	// KeepFraction is the smallest share of all samples a frame needs to
	// be kept in the file at all (default 1e-5); the samples of the frames
	// left out stay in their parent's width. Zooming cannot show them.
	KeepFraction float64
	// MaxFrames caps the frames kept in the file, which bounds its size
	// and opening time (default 300000); the narrowest go first. A
	// negative value means no cap.
	MaxFrames int
}

const (
	defaultWidth        = 1200
	defaultFrameHeight  = 16
	defaultFontSize     = 12
	defaultMinWidth     = 0.1
	defaultKeepFraction = 1e-5
	defaultMaxFrames    = 300000

	// charWidth is a monospace glyph's advance as a share of the font
	// size; labels are cut to fit by it.
	charWidth = 0.6
	padX      = 10
	matchFill = "#e600e6"
	rootFill  = "#c8c8c8"
)

//go:embed flamegraph.js
var viewerJS string

func (o Options) withDefaults() Options {
	if o.Width <= 0 {
		o.Width = defaultWidth
	}
	if o.FrameHeight <= 0 {
		o.FrameHeight = defaultFrameHeight
	}
	if o.FontSize <= 0 {
		o.FontSize = defaultFontSize
	}
	if o.MinWidth <= 0 {
		o.MinWidth = defaultMinWidth
	}
	if o.KeepFraction <= 0 {
		o.KeepFraction = defaultKeepFraction
	}
	if o.MaxFrames == 0 {
		o.MaxFrames = defaultMaxFrames
	}
	return o
}

// config is the viewer's layout, as fgConfig.
type config struct {
	Width     int     `json:"width"`
	Pad       int     `json:"pad"`
	Top       int     `json:"top"`
	FH        int     `json:"fh"`
	FontSize  float64 `json:"fontSize"`
	CharWidth float64 `json:"charWidth"`
	MaxDepth  int     `json:"maxDepth"`
	Icicle    bool    `json:"icicle"`
	MinWidth  float64 `json:"minWidth"`
	MatchFill string  `json:"matchFill"`
	RootFill  string  `json:"rootFill"`
}

// Write renders p as an SVG flame graph to w.
func Write(w io.Writer, p *Profile, opts Options) error {
	opts = opts.withDefaults()
	t, err := buildTree(p, opts.KeepFraction, opts.MaxFrames)
	if err != nil {
		return fmt.Errorf("flamegraph: %w", err)
	}
	title := opts.Title
	if title == "" {
		title = Title(p)
	}

	fs := opts.FontSize
	titleY := 2 * fs
	legendY := titleY + fs + 6
	top := int(legendY + fs)
	bottom := int(2*fs + 10)
	height := top + (t.maxDepth+1)*opts.FrameHeight + bottom
	width := opts.Width

	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<svg version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">
<title>`, width, height, width, height)
	escapeText(bw, title)
	fmt.Fprintf(bw, `</title>
<style>
text { font-family: monospace; font-size: %gpx; fill: #000; }
#title { font-size: %gpx; }
.ctl { cursor: pointer; fill: #333; }
.ctl:hover, .ctl:focus { fill: #0645ad; text-decoration: underline; outline: none; }
.hidden { display: none; }
#frames rect { cursor: pointer; }
#frames rect:hover { stroke: #000; stroke-width: 0.5; }
#frames text { pointer-events: none; }
#frames .dim { opacity: 0.45; }
</style>
<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1"><stop stop-color="#eeeeee" offset="5%%"/><stop stop-color="#eeeeb0" offset="95%%"/></linearGradient></defs>
<rect x="0" y="0" width="100%%" height="100%%" fill="url(#bg)"/>
<text id="title" x="%d" y="%g" text-anchor="middle">`, fs, fs+5, width/2, titleY)
	escapeText(bw, fitText(title, float64(width-2*padX)/((fs+5)*charWidth)))
	fmt.Fprintf(bw, "</text>\n")
	writeLegend(bw, width, legendY, fs)
	fmt.Fprintf(bw, `<text id="reset-zoom" class="ctl hidden" x="%d" y="%g" tabindex="0" role="button">Reset Zoom</text>
<text id="search" class="ctl" x="%d" y="%g" text-anchor="end" tabindex="0" role="button">Search</text>
<text id="reset-search" class="ctl hidden" x="%d" y="%g" text-anchor="end" tabindex="0" role="button">Reset Search</text>
<g id="frames"></g>
<text id="details" x="%d" y="%d"> </text>
<text id="matched" x="%d" y="%d" text-anchor="end"> </text>
`, padX, legendY, width-padX, legendY, width-padX-int(8*charWidth*fs), legendY,
		padX, height-bottom/2+int(fs/3), width-padX, height-bottom/2+int(fs/3))
	if t.total == 0 {
		fmt.Fprintf(bw, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">No samples</text>\n", width/2, top+opts.FrameHeight)
	}

	cfg, err := json.Marshal(config{
		Width: width, Pad: padX, Top: top, FH: opts.FrameHeight,
		FontSize: fs, CharWidth: charWidth, MaxDepth: t.maxDepth, Icicle: opts.Icicle,
		MinWidth: opts.MinWidth, MatchFill: matchFill, RootFill: rootFill,
	})
	if err != nil {
		return fmt.Errorf("flamegraph: %w", err)
	}
	// Both scripts are CDATA, so that the data needs JSON escaping only;
	// appendJSString escapes '>' and so can never close the section.
	bw.WriteString("<script type=\"application/json\" id=\"fg-data\"><![CDATA[\n")
	writeData(bw, t)
	bw.WriteString("\n]]></script>\n<script type=\"text/ecmascript\"><![CDATA[\nvar fgConfig = ")
	bw.Write(cfg)
	bw.WriteString(";\n")
	bw.WriteString(viewerJS)
	bw.WriteString("]]></script>\n</svg>\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flamegraph: %w", err)
	}
	return nil
}

// writeLegend centres the legend between the controls at either end of
// its line, as far as the width allows; its width is estimated from the
// monospace advance, which is all a static layout can know.
func writeLegend(bw *bufio.Writer, width int, y, fs float64) {
	const box, gap = 10, 18
	total := 0.0
	for c := range numCats {
		total += box + 4 + float64(len(c.String()))*fs*charWidth + gap
	}
	total -= gap
	x := (float64(width) - total) / 2
	// "Reset Zoom" on the left, "Reset Search  Search" on the right.
	x = max(min(x, float64(width-padX)-20*fs*charWidth-total), padX+12*fs*charWidth)
	bw.WriteString(`<g id="legend">`)
	for c := range numCats {
		col := legendColour(c)
		fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="rgb(%d,%d,%d)"/><text x="%.1f" y="%.1f">%s</text>`,
			x, y-box+1, box, box, col.r, col.g, col.b, x+box+4, y, c.String())
		x += box + 4 + float64(len(c.String()))*fs*charWidth + gap
	}
	bw.WriteString("</g>\n")
}

// fitText cuts s to at most n characters, marking the cut. The full text
// stays in the document's <title>.
func fitText(s string, n float64) string {
	r := []rune(s)
	if float64(len(r)) <= n || n < 4 {
		return s
	}
	return string(r[:int(n)-3]) + "..."
}

// writeData writes the tree as JSON. Frames are parallel arrays, with
// names and files deduplicated into a string table. The node arrays, which
// are most of a large graph, are strings of base-64 VLQ digits (as in
// source maps): nf holds frame+1 with the most used frames numbered first,
// nc the counts, and nd how many levels each node climbs back up from the
// one before it, mostly 0 in pre-order. That is about half the bytes of
// decimal arrays, and the browser's XML parser reads every byte.
func writeData(bw *bufio.Writer, t *tree) {
	uses := make([]int, len(t.frames))
	for _, n := range t.nodes {
		if n.frame >= 0 {
			uses[n.frame]++
		}
	}
	order := make([]int, len(t.frames)) // order[new] = old
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(uses[b], uses[a]) })
	renum := make([]int, len(t.frames))
	for newID, old := range order {
		renum[old] = newID
	}

	strIdx := map[string]int{}
	var strs []string
	intern := func(s string) int {
		i, ok := strIdx[s]
		if !ok {
			i = len(strs)
			strIdx[s] = i
			strs = append(strs, s)
		}
		return i
	}
	nameIdx := make([]int, len(order))
	fileIdx := make([]int, len(order))
	for i, old := range order {
		nameIdx[i] = intern(t.frames[old].Name)
		fileIdx[i] = intern(t.frames[old].File)
	}

	var buf []byte
	bw.WriteString("{\n\"s\": [")
	for i, s := range strs {
		if i > 0 {
			bw.WriteByte(',')
		}
		buf = appendJSString(buf[:0], s)
		bw.Write(buf)
	}
	bw.WriteString("]")
	ints := func(name string, n int, v func(int) int64) {
		fmt.Fprintf(bw, ",\n%q: [", name)
		for i := range n {
			buf = buf[:0]
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, v(i), 10)
			bw.Write(buf)
		}
		bw.WriteString("]")
	}
	frame := func(i int) Frame { return t.frames[order[i]] }
	nf := len(order)
	ints("fn", nf, func(i int) int64 { return int64(nameIdx[i]) })
	ints("ff", nf, func(i int) int64 { return int64(fileIdx[i]) })
	ints("fl", nf, func(i int) int64 { return int64(frame(i).Line) })
	ints("fk", nf, func(i int) int64 { return int64(frame(i).Kind) })
	ints("fc", nf, func(i int) int64 { return int64(colour(frame(i)).packed()) })
	fmt.Fprintf(bw, ",\n\"n\": %d", len(t.nodes))
	vlq := func(name string, v func(i int) uint64) {
		fmt.Fprintf(bw, ",\n%q: \"", name)
		for i := range t.nodes {
			buf = appendVLQ(buf[:0], v(i))
			bw.Write(buf)
		}
		bw.WriteString("\"")
	}
	vlq("nf", func(i int) uint64 {
		if f := t.nodes[i].frame; f >= 0 {
			return uint64(renum[f]) + 1
		}
		return 0
	})
	vlq("nc", func(i int) uint64 { return uint64(t.nodes[i].count) })
	vlq("nd", func(i int) uint64 {
		prev := int32(-1)
		if i > 0 {
			prev = t.nodes[i-1].depth
		}
		return uint64(prev + 1 - t.nodes[i].depth)
	})
	bw.WriteString("\n}")
}

const vlqDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// appendVLQ writes v five bits at a time, least significant first; a
// digit of 32 or more says that more follow.
func appendVLQ(b []byte, v uint64) []byte {
	for v >= 32 {
		b = append(b, vlqDigits[32|v&31])
		v >>= 5
	}
	return append(b, vlqDigits[v])
}

// appendJSString quotes s as a JSON (and so JavaScript) string that is
// plain ASCII without '<', '>' or '&', so that it is safe inside CDATA and
// any XML parser, whatever bytes a function or file name holds. Invalid
// UTF-8 becomes U+FFFD.
func appendJSString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r >= 0x20 && r < 0x7f && r != '<' && r != '>' && r != '&':
			b = append(b, byte(r))
		case r > 0xffff:
			r1, r2 := utf16Pair(r)
			b = u(u(b, r1), r2)
		default:
			b = u(b, r)
		}
	}
	return append(b, '"')
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// escapeText writes s as XML character data. encoding/xml replaces what
// XML cannot hold (most control characters, invalid UTF-8) by U+FFFD.
func escapeText(w io.Writer, s string) {
	xml.EscapeText(w, []byte(s))
}

// Title describes the recording in one line, as the graph's default
// title: "gunicorn (pid 1234, 3 subprocesses) — 8.0 s at 100 Hz — 3,200
// samples in 800 rounds, 2 errors". Samples are the stacks recorded, as
// the root frame counts them and record's summary says; a round samples
// every thread of every process once.
func Title(p *Profile) string {
	var b strings.Builder
	cmd := p.Command
	if cmd == "" {
		cmd = "pyprof"
	}
	b.WriteString(cmd)
	// A command that names its pids already ("gunicorn (pid 1234) and 3
	// subprocesses") is not told them twice.
	if len(p.Pids) > 0 && !strings.Contains(cmd, "pid ") {
		fmt.Fprintf(&b, " (pid %d", p.Pids[0])
		switch n := len(p.Pids) - 1; n {
		case 0:
		case 1:
			b.WriteString(", 1 subprocess")
		default:
			fmt.Fprintf(&b, ", %d subprocesses", n)
		}
		b.WriteString(")")
	}
	if p.Duration > 0 || p.Rate > 0 {
		b.WriteString(" \u2014 ")
		if p.Duration > 0 {
			b.WriteString(formatDuration(p.Duration))
			if p.Rate > 0 {
				b.WriteString(" at ")
			}
		}
		if p.Rate > 0 {
			b.WriteString(strconv.FormatFloat(p.Rate, 'f', -1, 64) + " Hz")
		}
	}
	b.WriteString(" \u2014 ")
	b.WriteString(plural(p.Total(), "sample"))
	if p.Rounds > 0 {
		b.WriteString(" in " + plural(p.Rounds, "round"))
	}
	if p.Errors > 0 {
		b.WriteString(", " + plural(p.Errors, "error"))
	}
	if p.Missed > 0 {
		b.WriteString(", " + plural(p.Missed, "missed round"))
	}
	return b.String()
}

func formatDuration(d time.Duration) string {
	if d < time.Minute {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
	return d.Round(time.Second).String()
}

func plural(n int64, what string) string {
	s := groupThousands(n) + " " + what
	if n != 1 {
		s += "s"
	}
	return s
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
