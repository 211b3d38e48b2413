package scantest

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/skip2/go-qrcode"
)

// QR renders text as a QR code (medium error correction, with its quiet zone)
// about px pixels square, black on white, as go-qrcode draws it. A negative px
// draws each module -px pixels wide instead.
func QR(text string, px int) image.Image {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		panic("scantest: cannot encode QR code: " + err.Error())
	}
	return rgbaCopy(q.Image(px))
}

// rgbaCopy copies img into a fresh RGBA picture with its origin at 0,0, the form
// every distortion works on (opaque pictures only matter here).
func rgbaCopy(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out
}

// sampleBilinear reads src at real coordinates (pixel centres at .5) by bilinear
// interpolation; outside the picture it gives bg.
func sampleBilinear(src *image.RGBA, fx, fy float64, bg color.RGBA) [4]float64 {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	fx -= 0.5
	fy -= 0.5
	x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
	ax, ay := fx-float64(x0), fy-float64(y0)
	var out [4]float64
	for j := 0; j < 2; j++ {
		for i := 0; i < 2; i++ {
			wt := (1 - math.Abs(float64(i)-ax)) * (1 - math.Abs(float64(j)-ay))
			if wt == 0 {
				continue
			}
			x, y := x0+i, y0+j
			var px [4]uint8
			if x < 0 || y < 0 || x >= w || y >= h {
				px = [4]uint8{bg.R, bg.G, bg.B, bg.A}
			} else {
				o := src.PixOffset(x, y)
				copy(px[:], src.Pix[o:o+4])
			}
			for c := range 4 {
				out[c] += wt * float64(px[c])
			}
		}
	}
	return out
}

func putPixel(dst *image.RGBA, x, y int, v [4]float64) {
	o := dst.PixOffset(x, y)
	for c := range 4 {
		dst.Pix[o+c] = clamp8(v[c])
	}
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

var whiteBG = color.RGBA{255, 255, 255, 255}

// Rotate turns img by degrees anticlockwise about its centre, on a whiteBG
// canvas grown to hold the whole turned picture, as a camera held at an angle.
func Rotate(img image.Image, degrees float64) image.Image {
	src := rgbaCopy(img)
	w, h := float64(src.Rect.Dx()), float64(src.Rect.Dy())
	th := degrees * math.Pi / 180
	c, s := math.Cos(th), math.Sin(th)
	nw := int(math.Ceil(math.Abs(w*c) + math.Abs(h*s)))
	nh := int(math.Ceil(math.Abs(w*s) + math.Abs(h*c)))
	dst := image.NewRGBA(image.Rect(0, 0, nw, nh))
	cx, cy := w/2, h/2
	ncx, ncy := float64(nw)/2, float64(nh)/2
	for y := 0; y < nh; y++ {
		for x := 0; x < nw; x++ {
			dx, dy := float64(x)+0.5-ncx, float64(y)+0.5-ncy
			// Inverse of an anticlockwise turn on screen (y grows downwards).
			sx := c*dx - s*dy + cx
			sy := s*dx + c*dy + cy
			putPixel(dst, x, y, sampleBilinear(src, sx, sy, whiteBG))
		}
	}
	return dst
}

// Scale resizes img by factor: averaging the covered pixels when shrinking (as
// a camera sensor does), bilinear when enlarging.
func Scale(img image.Image, factor float64) image.Image {
	src := rgbaCopy(img)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	nw, nh := max(1, int(math.Round(float64(w)*factor))), max(1, int(math.Round(float64(h)*factor)))
	dst := image.NewRGBA(image.Rect(0, 0, nw, nh))
	if factor >= 1 {
		for y := 0; y < nh; y++ {
			for x := 0; x < nw; x++ {
				putPixel(dst, x, y, sampleBilinear(src, (float64(x)+0.5)/factor, (float64(y)+0.5)/factor, whiteBG))
			}
		}
		return dst
	}
	for y := 0; y < nh; y++ {
		y0, y1 := y*h/nh, max(y*h/nh+1, (y+1)*h/nh)
		for x := 0; x < nw; x++ {
			x0, x1 := x*w/nw, max(x*w/nw+1, (x+1)*w/nw)
			var sum [4]float64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					o := src.PixOffset(sx, sy)
					for c := range 4 {
						sum[c] += float64(src.Pix[o+c])
					}
				}
			}
			n := float64((x1 - x0) * (y1 - y0))
			for c := range 4 {
				sum[c] /= n
			}
			putPixel(dst, x, y, sum)
		}
	}
	return dst
}

// Blur blurs img with an approximately Gaussian kernel of the given radius in
// pixels (three box-blur passes), like an out-of-focus or shaken camera. A
// radius of 0 or less returns a copy.
func Blur(img image.Image, radius int) image.Image {
	dst := rgbaCopy(img)
	if radius <= 0 {
		return dst
	}
	// Three boxes of half-width r spread like a Gaussian of sigma √(r(r+1)) ≈ r+½.
	for range 3 {
		blurAxis(dst, radius, true)
		blurAxis(dst, radius, false)
	}
	return dst
}

// blurAxis averages each pixel with its r neighbours on each side along one
// axis (edges clamped), with a running sum.
func blurAxis(img *image.RGBA, r int, horizontal bool) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	n, lines, step, lineStep := w, h, 4, img.Stride
	if !horizontal {
		n, lines, step, lineStep = h, w, img.Stride, 4
	}
	line := make([]int32, 4*n)
	div := int32(2*r + 1)
	for l := 0; l < lines; l++ {
		base := l * lineStep
		for i := 0; i < n; i++ {
			o := base + i*step
			for c := 0; c < 4; c++ {
				line[4*i+c] = int32(img.Pix[o+c])
			}
		}
		var sum [4]int32
		for k := -r; k <= r; k++ {
			i := 4 * min(n-1, max(0, k))
			for c := 0; c < 4; c++ {
				sum[c] += line[i+c]
			}
		}
		for i := 0; i < n; i++ {
			o := base + i*step
			for c := 0; c < 4; c++ {
				img.Pix[o+c] = uint8((sum[c] + div/2) / div)
			}
			out, in := 4*max(0, i-r), 4*min(n-1, i+r+1)
			for c := 0; c < 4; c++ {
				sum[c] += line[in+c] - line[out+c]
			}
		}
	}
}

// Perspective warps img into a keystone: the top edge shrinks by strength
// (0 none, 0.3 = 30% narrower, as from a camera well below a screen)
// and the picture is squashed vertically a little, on a white canvas of the
// same size.
func Perspective(img image.Image, strength float64) image.Image {
	src := rgbaCopy(img)
	w, h := float64(src.Rect.Dx()), float64(src.Rect.Dy())
	dst := image.NewRGBA(src.Rect)
	// Where the source corners land: top edge pulled in, whole picture lowered.
	inset := strength * w / 2
	drop := strength * h / 4
	H := solveHomography(
		[4][2]float64{{inset, drop}, {w - inset, drop}, {w, h}, {0, h}},
		[4][2]float64{{0, 0}, {w, 0}, {w, h}, {0, h}},
	)
	for y := 0; y < src.Rect.Dy(); y++ {
		for x := 0; x < src.Rect.Dx(); x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			d := H[6]*px + H[7]*py + 1
			sx := (H[0]*px + H[1]*py + H[2]) / d
			sy := (H[3]*px + H[4]*py + H[5]) / d
			putPixel(dst, x, y, sampleBilinear(src, sx, sy, whiteBG))
		}
	}
	return dst
}

// solveHomography solves for the projective map taking each from[i] to to[i]
// (8 coefficients, h33 = 1), by Gaussian elimination.
func solveHomography(from, to [4][2]float64) [8]float64 {
	var a [8][9]float64
	for i := range 4 {
		x, y, u, v := from[i][0], from[i][1], to[i][0], to[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	for c := range 8 {
		p := c
		for r := c + 1; r < 8; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		for r := range 8 {
			if r == c || a[c][c] == 0 {
				continue
			}
			f := a[r][c] / a[c][c]
			for k := c; k < 9; k++ {
				a[r][k] -= f * a[c][k]
			}
		}
	}
	var h [8]float64
	for i := range 8 {
		h[i] = a[i][8] / a[i][i]
	}
	return h
}

// Noise adds Gaussian sensor noise of standard deviation sigma (in 0-255 grey
// levels) to every pixel, the same on each channel, reproducibly for a seed.
func Noise(img image.Image, sigma float64, seed uint64) image.Image {
	dst := rgbaCopy(img)
	rng := rand.New(rand.NewPCG(seed, 0x5ca17e57))
	for i := 0; i+3 < len(dst.Pix); i += 4 {
		n := rng.NormFloat64() * sigma
		for c := range 3 {
			dst.Pix[i+c] = clamp8(float64(dst.Pix[i+c]) + n)
		}
	}
	return dst
}

// Invert swaps light and dark (255 - each colour channel): a QR code shown light
// on a dark screen.
func Invert(img image.Image) image.Image {
	dst := rgbaCopy(img)
	for i := 0; i+3 < len(dst.Pix); i += 4 {
		for c := range 3 {
			dst.Pix[i+c] = 255 - dst.Pix[i+c]
		}
	}
	return dst
}

// LowContrast squeezes the colours towards mid-grey, keeping contrast of them
// (1 unchanged, 0.2 = a faint picture) and lifting them by brightness (-255…255),
// like a dim or washed-out screen photo.
func LowContrast(img image.Image, contrast, brightness float64) image.Image {
	dst := rgbaCopy(img)
	for i := 0; i+3 < len(dst.Pix); i += 4 {
		for c := range 3 {
			dst.Pix[i+c] = clamp8((float64(dst.Pix[i+c])-128)*contrast + 128 + brightness)
		}
	}
	return dst
}

// Glare brightens img with a soft whiteBG spot centred at (cx, cy) as fractions
// of the width and height, of the given radius as a fraction of the long side,
// and peak strength (0…1: 1 turns the centre fully white), like a lamp
// reflected in a glossy screen.
func Glare(img image.Image, cx, cy, radius, strength float64) image.Image {
	dst := rgbaCopy(img)
	w, h := float64(dst.Rect.Dx()), float64(dst.Rect.Dy())
	px, py, r := cx*w, cy*h, radius*max(w, h)
	// Beyond 2r the spot adds less than 1/3000 of its strength: skip it.
	x0, x1 := max(0, int(px-2*r)), min(dst.Rect.Dx(), int(px+2*r)+1)
	y0, y1 := max(0, int(py-2*r)), min(dst.Rect.Dy(), int(py+2*r)+1)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			dx, dy := float64(x)+0.5-px, float64(y)+0.5-py
			a := strength * math.Exp(-(dx*dx+dy*dy)/(2*r*r/4))
			if a < 0.002 {
				continue
			}
			o := dst.PixOffset(x, y)
			for c := range 3 {
				v := float64(dst.Pix[o+c])
				dst.Pix[o+c] = clamp8(v + (255-v)*a)
			}
		}
	}
	return dst
}

// OnBackground places img with its top-left corner at (x, y) in a w×h
// photo-like scene: lighting gradients, blocks of furniture-like colour with
// hard edges, and fine texture, so the code is a small part of a busy picture.
// The scene depends only on w and h, so corpora are reproducible.
func OnBackground(img image.Image, w, h, x, y int) image.Image {
	bg := background(w, h)
	dst := image.NewRGBA(bg.Rect)
	copy(dst.Pix, bg.Pix)
	b := img.Bounds()
	draw.Draw(dst, image.Rect(x, y, x+b.Dx(), y+b.Dy()), img, b.Min, draw.Over)
	return dst
}

// scenes caches OnBackground's scenes by size: a test builds many pictures on
// the same one, and making it is slow under the race detector.
var scenes struct {
	sync.Mutex
	m map[image.Point]*image.RGBA
}

// background returns the (shared, not to be modified) scene of size w×h.
func background(w, h int) *image.RGBA {
	scenes.Lock()
	defer scenes.Unlock()
	if bg, ok := scenes.m[image.Pt(w, h)]; ok {
		return bg
	}
	if scenes.m == nil {
		scenes.m = map[image.Point]*image.RGBA{}
	}
	bg := makeScene(w, h)
	scenes.m[image.Pt(w, h)] = bg
	return bg
}

func makeScene(w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(uint64(w)*7919+uint64(h), 0xbac6))
	// Warm lighting gradient from top-left to bottom-right.
	for py := 0; py < h; py++ {
		for px := 0; px < w; px++ {
			t := (float64(px)/float64(w) + float64(py)/float64(h)) / 2
			o := dst.PixOffset(px, py)
			dst.Pix[o] = clamp8(190 - 90*t)
			dst.Pix[o+1] = clamp8(170 - 90*t)
			dst.Pix[o+2] = clamp8(150 - 80*t)
			dst.Pix[o+3] = 255
		}
	}
	// Shapes: shelves, frames, a dark TV bezel — anything with edges.
	for range 25 {
		rw, rh := rng.IntN(w/3+1)+4, rng.IntN(h/3+1)+4
		rx, ry := rng.IntN(w), rng.IntN(h)
		col := color.RGBA{uint8(rng.IntN(200) + 20), uint8(rng.IntN(200) + 20), uint8(rng.IntN(200) + 20), 255}
		draw.Draw(dst, image.Rect(rx, ry, rx+rw, ry+rh), image.NewUniform(col), image.Point{}, draw.Src)
	}
	// Fine texture (wallpaper, fabric), then the code.
	for i := 0; i+3 < len(dst.Pix); i += 4 {
		n := rng.IntN(25) - 12
		for c := range 3 {
			dst.Pix[i+c] = clamp8(float64(int(dst.Pix[i+c]) + n))
		}
	}
	return dst
}
