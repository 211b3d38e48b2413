package scan

import (
	"errors"
	"fmt"
	"image"
	"log/slog"

	"github.com/makiuchi-d/gozxing"
	gozxingmulti "github.com/makiuchi-d/gozxing/multi/qrcode"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/linkdesk/linkdesk/devices"
)

// ErrNoQRCode means no QR code could be read in the picture.
var ErrNoQRCode = errors.New("no QR code was found in the picture")

const (
	// fullMaxSide is the long side DecodeQR first shrinks big photos to: a QR
	// code a person means to scan stays readable, and decoding is much faster.
	fullMaxSide = 1600
	// quickMaxSide is the long side of the single pass QuickDecodeQR makes.
	quickMaxSide = 960
	// smallSide is the long side under which DecodeQR also tries the picture
	// enlarged, for codes drawn with one or two pixels per module.
	smallSide = 400
)

// DecodeQR returns the text of every QR code it can read in img, trying the
// variants that photos of screens need: shrunk and full size, inverted
// (light modules on dark), smoothed against noise, two binarizers, and the
// slower thorough finder search. Attempts go cheapest first and it stops at the
// first that reads anything. It returns ErrNoQRCode when none reads (also for
// an empty picture, and, matching ErrImageTooLarge too, for one over
// MaxImagePixels).
func DecodeQR(img image.Image) ([]string, error) {
	g, err := greyOf(img)
	if err != nil {
		return nil, err
	}
	work := g.downscale(fullMaxSide)
	half := lazy(func() *grey { return work.downscale(max(work.w, work.h) / 2) })
	smooth := lazy(func() *grey { return work.smoothed() })
	original := func() *grey {
		if g == work {
			return nil // already tried
		}
		return g
	}
	attempts := []struct {
		pic    func() *grey
		global bool // GlobalHistogramBinarizer instead of HybridBinarizer
		harder bool // TRY_HARDER: scan every row for finder patterns
		pure   bool // PURE_BARCODE: the picture is nothing but the code
	}{
		{pic: func() *grey { return work }},
		{pic: func() *grey { return work }, harder: true},
		{pic: lazy(func() *grey { return work.inverted() }), harder: true},
		{pic: smooth, harder: true},
		{pic: half, harder: true},
		{pic: func() *grey { return work }, global: true, harder: true},
		{pic: lazy(func() *grey { return smooth().inverted() }), harder: true},
		{pic: lazy(func() *grey { return half().inverted() }), harder: true},
		{pic: original, harder: true}, // a small code in a big photo
		{pic: lazy(func() *grey { return doubled(work) }), harder: true},
		{pic: lazy(func() *grey { return enlarged(g) }), harder: true},
		{pic: func() *grey { return g }, pure: true},
		{pic: lazy(func() *grey { return g.inverted() }), pure: true},
	}
	for _, a := range attempts {
		p := a.pic()
		if p == nil {
			continue
		}
		if texts := decodeGrey(p, a.global, a.harder, a.pure, true); len(texts) > 0 {
			return texts, nil
		}
	}
	return nil, ErrNoQRCode
}

// QuickDecodeQR is a cheap decoding, for camera frames: the camera gives many
// chances, so each frame gets little effort. One pass on the frame shrunk to
// at most 960 pixels (HybridBinarizer, the fast finder search), then one on
// half that size, which evens out noise and blur. It neither inverts nor looks
// for several codes: it returns at most one text, or ErrNoQRCode.
func QuickDecodeQR(img image.Image) ([]string, error) {
	g, err := greyOf(img)
	if err != nil {
		return nil, err
	}
	work := g.downscale(quickMaxSide)
	if texts := decodeGrey(work, false, false, false, false); len(texts) > 0 {
		return texts, nil
	}
	// Half size averages away noise and blur, and costs a quarter of the first pass.
	if texts := decodeGrey(work.downscale(max(work.w, work.h)/2), false, true, false, false); len(texts) > 0 {
		return texts, nil
	}
	return nil, ErrNoQRCode
}

// CodeFromImage reads the QR codes in img and returns the first user code meant
// for issuer (devices.ParseCodeInput's rules). When none is, the error says why:
// a *devices.ForeignLinkError before other refusals, ErrNoQRCode when nothing read.
func CodeFromImage(img image.Image, issuer string) (string, error) {
	texts, err := DecodeQR(img)
	if err != nil {
		return "", err
	}
	return codeFromTexts(texts, issuer)
}

// QuickCodeFromImage is CodeFromImage with QuickDecodeQR, for camera frames.
func QuickCodeFromImage(img image.Image, issuer string) (string, error) {
	texts, err := QuickDecodeQR(img)
	if err != nil {
		return "", err
	}
	return codeFromTexts(texts, issuer)
}

func codeFromTexts(texts []string, issuer string) (string, error) {
	var firstErr error
	for _, t := range texts {
		code, err := devices.ParseCodeInput(t, issuer)
		if err == nil {
			return code, nil
		}
		if firstErr == nil || errors.Is(err, devices.ErrForeignLink) {
			firstErr = err
		}
	}
	return "", firstErr
}

// errTooLarge is DecodeQR's answer for a picture over MaxImagePixels: it
// matches both ErrNoQRCode and ErrImageTooLarge.
var errTooLarge = fmt.Errorf("%w: %w", ErrNoQRCode, ErrImageTooLarge)

// greyOf is img as luminance; nil with ErrNoQRCode for an empty picture, and
// errTooLarge for one too big to hold in memory (such as an image.Uniform).
func greyOf(img image.Image) (*grey, error) {
	if img == nil || img.Bounds().Empty() {
		return nil, ErrNoQRCode
	}
	if b := img.Bounds(); int64(b.Dx())*int64(b.Dy()) > MaxImagePixels {
		return nil, errTooLarge
	}
	return toGrey(img), nil
}

// lazy makes f run at most once, on first use.
func lazy(f func() *grey) func() *grey {
	var g *grey
	done := false
	return func() *grey {
		if !done {
			g, done = f(), true
		}
		return g
	}
}

// enlarged is g scaled up to about 2×smallSide when it is small, else nil.
func enlarged(g *grey) *grey {
	long := max(g.w, g.h)
	if long >= smallSide {
		return nil
	}
	return g.upscale(max(2, 2*smallSide/long))
}

// doubled is g enlarged twice when it is at most 1000 pixels long, else nil.
func doubled(g *grey) *grey {
	if max(g.w, g.h) > 1000 {
		return nil
	}
	return g.upscale(2)
}

// decodeGrey makes one gozxing attempt on g and returns the distinct texts read.
// With multi, a success is followed by the multi-code reader to find other
// codes in the picture, which is also tried when the single reader fails.
// gozxing is a port from Java and might panic on odd input; a panic counts as
// nothing read.
func decodeGrey(g *grey, global, harder, pure, multi bool) (texts []string) {
	defer func() {
		if r := recover(); r != nil {
			slog.Warn("QR decoder failed", "panic", r)
			texts = nil
		}
	}()
	if g.w < 1 || g.h < 1 {
		return nil
	}
	var bin gozxing.Binarizer
	if global {
		bin = gozxing.NewGlobalHistgramBinarizer(g.source())
	} else {
		bin = gozxing.NewHybridBinarizer(g.source())
	}
	bmp, err := gozxing.NewBinaryBitmap(bin)
	if err != nil {
		return nil
	}
	hints := map[gozxing.DecodeHintType]any{}
	if harder {
		hints[gozxing.DecodeHintType_TRY_HARDER] = true
	}
	if pure {
		hints[gozxing.DecodeHintType_PURE_BARCODE] = true
	}
	add := func(s string) {
		for _, t := range texts {
			if t == s {
				return
			}
		}
		texts = append(texts, s)
	}
	if res, err := gozxingqr.NewQRCodeReader().Decode(bmp, hints); err == nil {
		add(res.GetText())
	}
	if multi && !pure {
		results, _ := gozxingmulti.NewQRCodeMultiReader().DecodeMultiple(bmp, hints)
		for _, r := range results {
			add(r.GetText())
		}
	}
	return texts
}

// grey is an 8-bit luminance picture (0 black, 255 white): the form every
// decoding pass works on, made once per picture.
type grey struct {
	w, h int
	pix  []byte // row-major, stride w
}

// toGrey converts img to luminance, fast for the types decoders and cameras
// produce. Transparent pixels count as white (as on a light background).
func toGrey(img image.Image) *grey {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	g := &grey{w: w, h: h, pix: make([]byte, w*h)}
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			o := m.PixOffset(b.Min.X, b.Min.Y+y)
			copy(g.pix[y*w:(y+1)*w], m.Pix[o:o+w])
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			o := m.YOffset(b.Min.X, b.Min.Y+y)
			copy(g.pix[y*w:(y+1)*w], m.Y[o:o+w])
		}
	case *image.RGBA: // premultiplied: over white adds 255-a
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			out := g.pix[y*w : (y+1)*w]
			for x := range out {
				p := row[4*x : 4*x+4 : 4*x+4]
				l := (int(p[0]) + 2*int(p[1]) + int(p[2])) / 4
				out[x] = byte(min(255, l+255-int(p[3])))
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			out := g.pix[y*w : (y+1)*w]
			for x := range out {
				p := row[4*x : 4*x+4 : 4*x+4]
				l := (int(p[0]) + 2*int(p[1]) + int(p[2])) / 4
				a := int(p[3])
				out[x] = byte((l*a + 255*(255-a)) / 255)
			}
		}
	default:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, gg, bb, a := img.At(x, y).RGBA()
				l := (r + 2*gg + bb) / 4 // premultiplied: over white adds 0xffff-a
				g.pix[i] = byte(min(0xffff, l+0xffff-a) >> 8)
				i++
			}
		}
	}
	return g
}

// downscale returns g shrunk so its long side is at most maxSide, each output
// pixel the average of the input pixels it covers (which also smooths noise).
// It returns g itself when it is already small enough.
func (g *grey) downscale(maxSide int) *grey {
	long := max(g.w, g.h)
	if long <= maxSide || maxSide <= 0 {
		return g
	}
	dw := max(1, g.w*maxSide/long)
	dh := max(1, g.h*maxSide/long)
	out := &grey{w: dw, h: dh, pix: make([]byte, dw*dh)}
	xs := make([]int, dw+1)
	for x := range xs {
		xs[x] = x * g.w / dw
	}
	sums := make([]int, dw)
	for y := 0; y < dh; y++ {
		y0, y1 := y*g.h/dh, (y+1)*g.h/dh
		clear(sums)
		for sy := y0; sy < y1; sy++ {
			row := g.pix[sy*g.w : (sy+1)*g.w]
			for x := 0; x < dw; x++ {
				s := 0
				for _, v := range row[xs[x]:xs[x+1]] {
					s += int(v)
				}
				sums[x] += s
			}
		}
		orow := out.pix[y*dw : (y+1)*dw]
		for x := range orow {
			orow[x] = byte(sums[x] / ((xs[x+1] - xs[x]) * (y1 - y0)))
		}
	}
	return out
}

// upscale enlarges g by an integer factor with bilinear interpolation, for
// pictures whose modules are too small for the finder-pattern search (a code
// drawn with one or two pixels per module, or photographed from afar).
func (g *grey) upscale(f int) *grey {
	out := &grey{w: g.w * f, h: g.h * f, pix: make([]byte, g.w*f*g.h*f)}
	// Source coordinate of output pixel i, in 1/(2f) units: (2i+1-f)/(2f).
	for y := 0; y < out.h; y++ {
		sy := 2*y + 1 - f
		y0 := max(0, floorDiv(sy, 2*f))
		y1 := min(g.h-1, y0+1)
		fy := min(max(sy-2*f*y0, 0), 2*f)
		r0, r1 := g.pix[y0*g.w:(y0+1)*g.w], g.pix[y1*g.w:(y1+1)*g.w]
		row := out.pix[y*out.w : (y+1)*out.w]
		for x := range row {
			sx := 2*x + 1 - f
			x0 := max(0, floorDiv(sx, 2*f))
			x1 := min(g.w-1, x0+1)
			fx := min(max(sx-2*f*x0, 0), 2*f)
			top := int(r0[x0])*(2*f-fx) + int(r0[x1])*fx
			bot := int(r1[x0])*(2*f-fx) + int(r1[x1])*fx
			row[x] = byte((top*(2*f-fy) + bot*fy) / (4 * f * f))
		}
	}
	return out
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// inverted returns the negative of g, for light codes on a dark background.
func (g *grey) inverted() *grey {
	out := &grey{w: g.w, h: g.h, pix: make([]byte, len(g.pix))}
	for i, v := range g.pix {
		out.pix[i] = 255 - v
	}
	return out
}

// smoothed returns g after a 3×3 box blur, which evens out sensor noise that
// would otherwise break the finder patterns into specks.
func (g *grey) smoothed() *grey {
	w, h := g.w, g.h
	tmp := make([]uint16, w*h)
	for y := 0; y < h; y++ {
		row := g.pix[y*w : (y+1)*w]
		t := tmp[y*w : (y+1)*w]
		for x := range row {
			s := uint16(row[x])
			n := uint16(1)
			if x > 0 {
				s += uint16(row[x-1])
				n++
			}
			if x+1 < w {
				s += uint16(row[x+1])
				n++
			}
			t[x] = s * 6 / n // ×6 keeps sixths exact for n = 1, 2, 3
		}
	}
	out := &grey{w: w, h: h, pix: make([]byte, w*h)}
	for y := 0; y < h; y++ {
		y0, y1 := max(0, y-1), min(h-1, y+1)
		for x := 0; x < w; x++ {
			s := 0
			for yy := y0; yy <= y1; yy++ {
				s += int(tmp[yy*w+x])
			}
			out.pix[y*w+x] = byte(s / (6 * (y1 - y0 + 1)))
		}
	}
	return out
}

// source returns g as a gozxing luminance source without copying.
func (g *grey) source() gozxing.LuminanceSource { return &lumSource{g: g} }

// lumSource is a gozxing.LuminanceSource over a grey picture.
type lumSource struct {
	gozxing.LuminanceSourceBase
	g *grey
}

func (s *lumSource) GetWidth() int  { return s.g.w }
func (s *lumSource) GetHeight() int { return s.g.h }

func (s *lumSource) GetRow(y int, row []byte) ([]byte, error) {
	if y < 0 || y >= s.g.h {
		return nil, gozxing.NewNotFoundException("row out of range")
	}
	if len(row) < s.g.w {
		row = make([]byte, s.g.w)
	}
	copy(row, s.g.pix[y*s.g.w:(y+1)*s.g.w])
	return row, nil
}

func (s *lumSource) GetMatrix() []byte { return s.g.pix }

func (s *lumSource) Invert() gozxing.LuminanceSource { return s.g.inverted().source() }

func (s *lumSource) String() string { return gozxing.LuminanceSourceString(s) }
