package scan_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
	st "github.com/linkdesk/linkdesk/devices/scan/scantest"
)

// scanIssuer is the Linkdesk service the corpus codes belong to.
const scanIssuer = "https://link.example.com"

// corpusPayloads are what a kiosk or TV puts in its QR code: the complete
// verification URI (as linkd builds it), the app link, and a bare code.
var corpusPayloads = []struct{ text, code string }{
	{scanIssuer + "/link?user_code=BCDF-GHJK", "BCDFGHJK"},
	{devices.LinkURL(scanIssuer, "LMNPQRST"), "LMNPQRST"},
	{"VWXZ-BCDF", "VWXZBCDF"},
}

// level is one distortion at one strength. make builds the picture for a
// payload and a variant (0, 1: another seed, angle, position or size, so each
// level has several distinct samples). full and quick are the lowest decode
// rates (percent) the test accepts for DecodeQR and QuickDecodeQR; -1 means the
// rate is only measured and logged, not asserted: beyond what that decoder is
// meant to read.
type level struct {
	name, level string
	make        func(text string, variant int) image.Image
	full, quick int
	variants    int
}

// qrPx is the size of the rendered codes: about 7 pixels per module for the
// URL payloads, as a QR code photographed from a couple of metres.
const qrPx = 300

func qr(text string, variant int) image.Image { return st.QR(text, qrPx-20*variant) }

// corpus is the list of distortions and levels ("clean" is rotation 0, scale 1,
// blur 0, perspective 0 and noise 0).
//
// Floors: the corpus is deterministic, so the rates repeat exactly; each floor
// is the rate measured (see the report and the logged table) less one sample
// (1 of 6 ≈ 17 points) where the level is near a limit, so a small change in
// gozxing or float rounding does not fail the test, and 100% where reading
// must be exact: clean, inverted, rotations, mild blur, noise and glare.
// Perspective stays at 66% for DecodeQR: the bare-code payload makes a
// version-1 code, which has no alignment pattern, so gozxing cannot correct
// keystone on it; the two link payloads (what kiosks show) must all read.
// QuickDecodeQR has no floor where its single cheap pass is by design not
// enough: inverted codes, codes of 1-2 pixels a module, a small code in a
// big photo; the camera gives it other frames.
func corpus() []level {
	var ls []level
	add := func(name, lvl string, full, quick int, f func(string, int) image.Image) {
		ls = append(ls, level{name, lvl, f, full, quick, 2})
	}
	add("clean", "-", 100, 100, qr)
	add("inverted", "-", 100, -1, func(s string, v int) image.Image { return st.Invert(qr(s, v)) })
	for _, c := range []struct {
		deg         float64
		full, quick int
	}{{15, 100, 83}, {45, 100, 83}, {90, 100, 100}, {170, 100, 83}} {
		add("rotate", fmt.Sprintf("%g°", c.deg), c.full, c.quick, func(s string, v int) image.Image {
			return st.Rotate(qr(s, v), c.deg+float64(3*v))
		})
	}
	for _, c := range []struct {
		f           float64
		full, quick int
	}{{0.5, 100, 83}, {0.3, 83, 50}, {0.2, 66, -1}} {
		add("scale", fmt.Sprintf("×%g", c.f), c.full, c.quick, func(s string, v int) image.Image {
			return st.Scale(qr(s, v), c.f)
		})
	}
	for _, c := range []struct{ r, full, quick int }{{1, 100, 100}, {2, 100, 83}, {3, 33, 16}, {4, -1, -1}} {
		add("blur", fmt.Sprintf("r=%d", c.r), c.full, c.quick, func(s string, v int) image.Image {
			return st.Blur(qr(s, v), c.r)
		})
	}
	for _, p := range []float64{0.1, 0.2, 0.3} {
		add("perspective", fmt.Sprintf("%g", p), 66, 50, func(s string, v int) image.Image {
			return st.Perspective(qr(s, v), p)
		})
	}
	for _, c := range []struct {
		sigma       float64
		full, quick int
	}{{20, 100, 100}, {40, 100, 83}, {60, 83, 66}} {
		add("noise", fmt.Sprintf("σ=%g", c.sigma), c.full, c.quick, func(s string, v int) image.Image {
			return st.Noise(qr(s, v), c.sigma, uint64(v+1))
		})
	}
	for _, c := range []struct {
		contrast    float64
		full, quick int
	}{{0.5, 100, 100}, {0.25, 100, 50}, {0.1, 83, -1}} {
		add("low contrast", fmt.Sprintf("%g", c.contrast), c.full, c.quick, func(s string, v int) image.Image {
			return st.LowContrast(qr(s, v), c.contrast, 40)
		})
	}
	for _, c := range []struct {
		strength    float64
		full, quick int
	}{{0.5, 100, 100}, {0.8, 100, 83}} {
		add("glare", fmt.Sprintf("%g", c.strength), c.full, c.quick, func(s string, v int) image.Image {
			return st.Glare(qr(s, v), 0.35, 0.4, 0.3, c.strength)
		})
	}
	add("inverted+noise", "σ=30", 100, -1, func(s string, v int) image.Image {
		return st.Noise(st.Invert(qr(s, v)), 30, uint64(v+7))
	})
	add("in scene", "1280×720", 100, 83, func(s string, v int) image.Image {
		return st.OnBackground(st.QR(s, 200), 1280, 720, 500+100*v, 200)
	})
	add("in big photo", "3000×2000", 100, -1, func(s string, v int) image.Image {
		return st.OnBackground(st.QR(s, 150+30*v), 3000, 2000, 1900, 1200)
	})
	ls[len(ls)-1].variants = 1 // slow under -race
	for i, c := range []struct {
		persp, deg  float64
		blur        int
		contrast    float64
		sigma       float64
		full, quick int
	}{{0.1, 8, 1, 0.7, 10, 100, 66}, {0.2, 25, 1, 0.5, 20, 33, -1}, {0.25, 40, 2, 0.4, 30, -1, -1}} {
		add("photo chain", []string{"mild", "medium", "hard"}[i], c.full, c.quick, func(s string, v int) image.Image {
			img := st.OnBackground(st.QR(s, 260), 800, 600, 250+40*v, 150)
			img = st.Perspective(img, c.persp)
			img = st.Rotate(img, c.deg+float64(4*v))
			img = st.Blur(img, c.blur)
			img = st.Glare(img, 0.6, 0.3, 0.25, 0.5)
			img = st.LowContrast(img, c.contrast, 20)
			return st.Noise(img, c.sigma, uint64(11+v))
		})
	}
	ls[len(ls)-1].variants = 1 // only measured, and slow under -race
	return ls
}

// TestDecodeCorpus decodes every picture of the corpus with DecodeQR and
// QuickDecodeQR, logs the decode rate per distortion and level, and checks
// each rate against the level's floor.
func TestDecodeCorpus(t *testing.T) {
	levels := corpus()
	type job struct{ l, p, v int }
	type result struct{ full, quick bool }
	results := make([][]result, len(levels))
	var jobs []job
	for li := range levels {
		results[li] = make([]result, len(corpusPayloads)*levels[li].variants)
		for p := range corpusPayloads {
			for v := range levels[li].variants {
				jobs = append(jobs, job{li, p, v})
			}
		}
	}
	ch := make(chan job)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				text := corpusPayloads[j.p].text
				img := levels[j.l].make(text, j.v)
				full, _ := scan.DecodeQR(img)
				quick, _ := scan.QuickDecodeQR(img)
				results[j.l][j.p*levels[j.l].variants+j.v] = result{slices.Contains(full, text), slices.Contains(quick, text)}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()

	var table strings.Builder
	fmt.Fprintf(&table, "\n%-15s %-10s %6s %6s   %s\n", "distortion", "level", "full", "quick", "floors full/quick")
	for li, l := range levels {
		var nf, nq int
		for _, r := range results[li] {
			if r.full {
				nf++
			}
			if r.quick {
				nq++
			}
		}
		n := len(results[li])
		pf, pq := 100*nf/n, 100*nq/n
		fmt.Fprintf(&table, "%-15s %-10s %5d%% %5d%%   %s/%s\n", l.name, l.level, pf, pq, floor(l.full), floor(l.quick))
		if l.full >= 0 && pf < l.full {
			t.Errorf("%s %s: DecodeQR read %d%%, want at least %d%%", l.name, l.level, pf, l.full)
		}
		if l.quick >= 0 && pq < l.quick {
			t.Errorf("%s %s: QuickDecodeQR read %d%%, want at least %d%%", l.name, l.level, pq, l.quick)
		}
	}
	t.Log(table.String())
}

func floor(f int) string {
	if f < 0 {
		return "-"
	}
	return fmt.Sprintf("%d%%", f)
}

// foreignURI is a verification link of another service: a phishing page
// showing a QR code must not link the attacker's device.
const foreignURI = "https://link.phish.example/link?user_code=BCDF-GHJK"

func TestCodeFromImageReadsPayloads(t *testing.T) {
	for _, p := range corpusPayloads {
		img := st.Rotate(st.OnBackground(st.QR(p.text, 240), 800, 600, 300, 200), 20)
		for name, f := range map[string]func(image.Image, string) (string, error){
			"CodeFromImage": scan.CodeFromImage, "QuickCodeFromImage": scan.QuickCodeFromImage,
		} {
			if code, err := f(img, scanIssuer); err != nil || code != p.code {
				t.Errorf("%s(%q) = %q, %v; want %q", name, p.text, code, err, p.code)
			}
		}
	}
}

func TestCodeFromImageWarnsOfForeignLinks(t *testing.T) {
	for _, text := range []string{
		foreignURI,
		devices.LinkURL("https://link.phish.example", "BCDFGHJK"),
		"https://link.example.com.phish.example/link?user_code=BCDF-GHJK",
		"http://link.example.com/link?user_code=BCDF-GHJK", // not https: another origin
	} {
		for _, img := range []image.Image{st.QR(text, 300), st.Perspective(st.Rotate(st.QR(text, 300), 30), 0.1)} {
			code, err := scan.CodeFromImage(img, scanIssuer)
			var fe *devices.ForeignLinkError
			if !errors.Is(err, devices.ErrForeignLink) || !errors.As(err, &fe) || code != "" {
				t.Errorf("%q: got %q, %v; want a foreign-link error", text, code, err)
			}
		}
	}
}

func TestCodeFromImageRefusesOtherPictures(t *testing.T) {
	grey := image.NewGray(image.Rect(0, 0, 640, 480))
	for i := range grey.Pix {
		grey.Pix[i] = 128
	}
	for _, c := range []struct {
		name string
		img  image.Image
		want error // nil: any error
	}{
		{"noise", st.Noise(grey, 60, 1), scan.ErrNoQRCode},
		{"scene without a code", st.OnBackground(image.NewRGBA(image.Rectangle{}), 1280, 720, 0, 0), scan.ErrNoQRCode},
		{"blank", image.NewRGBA(image.Rect(0, 0, 300, 300)), scan.ErrNoQRCode},
		{"empty", image.NewRGBA(image.Rectangle{}), scan.ErrNoQRCode},
		{"nil", nil, scan.ErrNoQRCode},
		{"endless", image.NewUniform(color.White), scan.ErrNoQRCode},
		{"hello world", st.QR("hello world", 300), nil},
		{"other page of the service", st.QR(scanIssuer+"/about?user_code=BCDF-GHJK", 300), devices.ErrNotALink},
		{"link without a code", st.QR(scanIssuer+"/link", 300), devices.ErrNotALink},
		{"mail link", st.QR("mailto:someone@link.example.com", 300), devices.ErrNotALink},
	} {
		code, err := scan.CodeFromImage(c.img, scanIssuer)
		if err == nil || code != "" || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: got %q, %v; want error %v", c.name, code, err, c.want)
		}
		if errors.Is(err, devices.ErrForeignLink) {
			t.Errorf("%s: %v is not a foreign link", c.name, err)
		}
	}
	if _, err := scan.DecodeQR(image.NewUniform(color.White)); !errors.Is(err, scan.ErrImageTooLarge) {
		t.Errorf("endless picture: %v, want ErrImageTooLarge too", err)
	}
	for _, img := range []image.Image{nil, image.NewRGBA(image.Rectangle{}), st.Noise(grey, 60, 2)} {
		if texts, err := scan.QuickDecodeQR(img); !errors.Is(err, scan.ErrNoQRCode) || texts != nil {
			t.Errorf("QuickDecodeQR: %q, %v; want ErrNoQRCode", texts, err)
		}
	}
}

// TestTwoCodes: a picture with a foreign code and the right one gives the
// right code whichever is where, and DecodeQR reports both.
func TestTwoCodes(t *testing.T) {
	right := corpusPayloads[0]
	for _, swap := range []bool{false, true} {
		a, b := st.QR(foreignURI, 260), st.QR(right.text, 260)
		if swap {
			a, b = b, a
		}
		both := st.OnBackground(a, 1000, 500, 100, 100).(*image.RGBA)
		draw.Draw(both, image.Rect(600, 120, 860, 380), b, image.Point{}, draw.Src)
		texts, err := scan.DecodeQR(both)
		if err != nil || !slices.Contains(texts, foreignURI) || !slices.Contains(texts, right.text) {
			t.Errorf("swap %v: DecodeQR = %q, %v; want both codes", swap, texts, err)
		}
		if code, err := scan.CodeFromImage(both, scanIssuer); err != nil || code != right.code {
			t.Errorf("swap %v: CodeFromImage = %q, %v; want %q", swap, code, err, right.code)
		}
	}
}

// TestImageTypes: the fast grey conversions and sub-images with a non-zero
// origin read the same as RGBA.
func TestImageTypes(t *testing.T) {
	text := corpusPayloads[1].text
	base := st.OnBackground(st.QR(text, 240), 640, 480, 350, 200).(*image.RGBA)
	convert := func(m draw.Image) image.Image {
		draw.Draw(m, m.Bounds(), base, image.Point{}, draw.Src)
		return m
	}
	r := base.Bounds()
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			c := base.RGBAAt(x, y)
			yy, _, _ := color.RGBToYCbCr(c.R, c.G, c.B)
			ycc.Y[ycc.YOffset(x, y)] = yy
		}
	}
	for name, img := range map[string]image.Image{
		"RGBA":                base,
		"sub-image":           base.SubImage(image.Rect(300, 150, 640, 480)),
		"NRGBA":               convert(image.NewNRGBA(r)),
		"Gray":                convert(image.NewGray(r)),
		"Gray16":              convert(image.NewGray16(r)),
		"RGBA64":              convert(image.NewRGBA64(r)),
		"YCbCr":               ycc,
		"paletted":            convert(image.NewPaletted(r, color.Palette{color.Black, color.White, color.Gray{128}})),
		"one pixel a module":  st.QR(text, -1),
		"two pixels a module": st.QR(text, -2),
	} {
		if texts, err := scan.DecodeQR(img); err != nil || !slices.Contains(texts, text) {
			t.Errorf("%s: %q, %v", name, texts, err)
		}
	}
}

// halfBlack is a 40×20 picture, left half black and right half white, to see
// which way ReadImage turns a picture.
func halfBlack() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, 0, 20, 20), image.Black, image.Point{}, draw.Src)
	return img
}

// withOrientation inserts an EXIF APP1 segment holding orientation o (big-endian
// TIFF) right after a JPEG's start-of-image marker.
func withOrientation(jpg []byte, o byte) []byte {
	exif := []byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" +
		"\x00\x01" + // one entry
		"\x01\x12\x00\x03\x00\x00\x00\x01\x00" + string([]byte{o}) + "\x00\x00" +
		"\x00\x00\x00\x00") // no next IFD
	seg := append([]byte{0xFF, 0xE1, 0, byte(len(exif) + 2)}, exif...)
	return slices.Concat(jpg[:2], seg, jpg[2:])
}

func TestReadImage(t *testing.T) {
	src := st.QR(corpusPayloads[0].text, 300)
	var pngData, jpgData, gifData bytes.Buffer
	if err := png.Encode(&pngData, src); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgData, src, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&gifData, src, nil); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"PNG": pngData.Bytes(), "JPEG": jpgData.Bytes(), "GIF": gifData.Bytes()} {
		img, err := scan.ReadImage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if code, err := scan.CodeFromImage(img, scanIssuer); err != nil || code != corpusPayloads[0].code {
			t.Errorf("%s: code %q, %v", name, code, err)
		}
	}

	// A file, and a missing one.
	path := filepath.Join(t.TempDir(), "code.png")
	if err := os.WriteFile(path, pngData.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if img, err := scan.ReadImageFile(path); err != nil || img.Bounds().Dx() != src.Bounds().Dx() {
		t.Errorf("ReadImageFile: %v", err)
	}
	if _, err := scan.ReadImageFile(path + ".missing"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}

	// Not pictures, and a damaged one.
	for name, data := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("https://link.example.com/link?user_code=BCDF-GHJK"),
		"truncated": pngData.Bytes()[:pngData.Len()/2],
	} {
		if _, err := scan.ReadImage(bytes.NewReader(data)); !errors.Is(err, scan.ErrNotAnImage) {
			t.Errorf("%s: %v, want ErrNotAnImage", name, err)
		}
	}

	// A header claiming 10000×6000 (60 megapixels) is refused before decoding.
	huge := []byte("GIF89a\x10\x27\x70\x17\x00\x00\x00")
	if _, err := scan.ReadImage(bytes.NewReader(huge)); !errors.Is(err, scan.ErrImageTooLarge) {
		t.Errorf("huge: %v, want ErrImageTooLarge", err)
	}
	if strings.Contains(scan.ErrImageTooLarge.Error(), "Err") || strings.Contains(scan.ErrNotAnImage.Error(), "image:") {
		t.Errorf("errors should be plain words: %q, %q", scan.ErrImageTooLarge, scan.ErrNotAnImage)
	}
}

// TestReadImageOrientation: a JPEG is turned upright by its EXIF orientation,
// as phones store photos sideways.
func TestReadImageOrientation(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, halfBlack(), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	dark := func(img image.Image, x, y int) bool {
		r, _, _, _ := img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y).RGBA()
		return r < 0x4000
	}
	for _, c := range []struct {
		o            byte
		w, h         int
		darkX, darkY int // a pixel that must be dark (the opposite corner is light)
	}{
		{1, 40, 20, 2, 10},  // as stored: black on the left
		{3, 40, 20, 37, 10}, // turned 180°: black on the right
		{6, 20, 40, 10, 2},  // turned clockwise: black on top
		{8, 20, 40, 10, 37}, // turned anticlockwise: black at the bottom
		{2, 40, 20, 37, 10}, // mirrored
	} {
		img, err := scan.ReadImage(bytes.NewReader(withOrientation(buf.Bytes(), c.o)))
		if err != nil {
			t.Fatalf("orientation %d: %v", c.o, err)
		}
		b := img.Bounds()
		if b.Dx() != c.w || b.Dy() != c.h {
			t.Errorf("orientation %d: size %v, want %dx%d", c.o, b.Size(), c.w, c.h)
			continue
		}
		if !dark(img, c.darkX, c.darkY) || dark(img, c.w-1-c.darkX, c.h-1-c.darkY) {
			t.Errorf("orientation %d: black half in the wrong place", c.o)
		}
	}
	// And the QR code of a sideways phone photo still reads.
	var qrBuf bytes.Buffer
	if err := jpeg.Encode(&qrBuf, st.Rotate(st.QR(corpusPayloads[0].text, 300), 90), nil); err != nil {
		t.Fatal(err)
	}
	img, err := scan.ReadImage(bytes.NewReader(withOrientation(qrBuf.Bytes(), 6)))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := scan.CodeFromImage(img, scanIssuer); err != nil || code != corpusPayloads[0].code {
		t.Errorf("sideways photo: %q, %v", code, err)
	}
}

// TestDecodeNeverPanics feeds odd shapes and contents: slivers, single
// pixels, noise, and a QR code cut in half.
func TestDecodeNeverPanics(t *testing.T) {
	half := st.QR(corpusPayloads[0].text, 200).(*image.RGBA).SubImage(image.Rect(0, 0, 200, 100))
	for _, r := range []image.Rectangle{
		image.Rect(0, 0, 1, 1), image.Rect(0, 0, 1, 600), image.Rect(0, 0, 600, 1),
		image.Rect(0, 0, 3, 3), image.Rect(-5, -7, 40, 39), image.Rect(0, 0, 17, 300),
	} {
		noise := st.Noise(image.NewRGBA(r), 90, uint64(r.Dx()))
		for _, img := range []image.Image{noise, image.NewGray(r), st.Invert(noise)} {
			if _, err := scan.DecodeQR(img); !errors.Is(err, scan.ErrNoQRCode) {
				t.Errorf("%v: %v", r, err)
			}
			if _, err := scan.QuickDecodeQR(img); !errors.Is(err, scan.ErrNoQRCode) {
				t.Errorf("quick %v: %v", r, err)
			}
		}
	}
	if texts, err := scan.DecodeQR(half); err == nil {
		t.Errorf("half a code read as %q", texts)
	}
}
