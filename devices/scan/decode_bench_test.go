package scan_test

import (
	"image"
	"testing"

	"github.com/linkdesk/linkdesk/devices/scan"
	st "github.com/linkdesk/linkdesk/devices/scan/scantest"
)

// benchFrames are 1280×720 camera-like frames: one with a kiosk's code a
// little turned and noisy, one of the room without a code (the common case
// while a person aims the camera).
func benchFrames() (withCode, without image.Image) {
	withCode = st.OnBackground(st.QR(corpusPayloads[0].text, 260), 1280, 720, 520, 230)
	withCode = st.Noise(st.Rotate(withCode, 8), 10, 1)
	withCode = st.Scale(withCode, 1280/float64(withCode.Bounds().Dx()))
	without = st.Noise(st.OnBackground(image.NewRGBA(image.Rectangle{}), 1280, 720, 0, 0), 10, 2)
	return withCode, without
}

func benchDecode(b *testing.B, decode func(image.Image) ([]string, error), withCode bool) {
	code, none := benchFrames()
	img := none
	if withCode {
		img = code
	}
	if _, err := decode(img); (err == nil) != withCode {
		b.Fatalf("decode: %v", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_, _ = decode(img)
	}
}

func BenchmarkQuickDecodeQR(b *testing.B) {
	b.Run("code", func(b *testing.B) { benchDecode(b, scan.QuickDecodeQR, true) })
	b.Run("none", func(b *testing.B) { benchDecode(b, scan.QuickDecodeQR, false) })
}

func BenchmarkDecodeQR(b *testing.B) {
	b.Run("code", func(b *testing.B) { benchDecode(b, scan.DecodeQR, true) })
	b.Run("none", func(b *testing.B) { benchDecode(b, scan.DecodeQR, false) })
}
