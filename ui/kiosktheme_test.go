package ui

import (
	"image"
	"image/color"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
)

// quietModules counts the white modules above the QR code's first dark one, in a
// qrImage drawn one pixel per module.
func quietModules(img image.Image) int {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				return y - b.Min.Y
			}
		}
	}
	return b.Dy()
}

// TestKioskHighContrast: with --high-contrast the kiosk is black on white whatever the
// system's variant, its code is black and larger than in the normal theme for the same
// window, and its QR code has twice the quiet zone; the QR code still decodes.
func TestKioskHighContrast(t *testing.T) {
	k, w, clock := newKioskTest(t, nil)
	k.Show(kioskCode(clock, "BCDF-GHJK"))
	normalCode := k.code.TextSize
	normalQuiet := quietModules(k.qr.Image)

	fyne.CurrentApp().Settings().SetTheme(HighContrastTheme())
	k.SetHighContrast(true)
	w.Resize(fyne.NewSize(1919, 1080)) // lay out again under the new theme
	w.Resize(fyne.NewSize(1920, 1080))

	black := color.NRGBA{A: 0xff}
	for _, v := range []fyne.ThemeVariant{theme.VariantLight, theme.VariantDark} {
		th := HighContrastTheme()
		if c := th.Color(theme.ColorNameBackground, v); !sameColor(c, color.White) {
			t.Errorf("variant %d: background %v, want white", v, c)
		}
		if c := th.Color(theme.ColorNameForeground, v); !sameColor(c, black) {
			t.Errorf("variant %d: foreground %v, want black", v, c)
		}
	}
	for name, txt := range map[string]*canvas.Text{"code": k.code, "heading": k.heading, "countdown": k.countTxt, "status": k.status} {
		if !sameColor(txt.Color, black) {
			t.Errorf("%s colour %v, want black", name, txt.Color)
		}
	}
	// Larger, as far as the column beside the QR code allows.
	if !(k.code.TextSize > normalCode) {
		t.Errorf("high-contrast code size %v, normal %v: want it larger", k.code.TextSize, normalCode)
	}
	if q := quietModules(k.qr.Image); q != 2*normalQuiet {
		t.Errorf("QR quiet zone %d modules, want %d (twice %d)", q, 2*normalQuiet, normalQuiet)
	}
	if got, want := decodeKioskQR(t, k, w), "https://link.example.com/link?user_code=BCDF-GHJK"; got != want {
		t.Errorf("QR code reads %q, want %q", got, want)
	}
	// What the room sees: the window's corner (background) is white.
	img := w.Canvas().Capture()
	if c := img.At(2, 2); !sameColor(c, color.White) {
		t.Errorf("window background %v, want white", c)
	}
	shot(t, w, "kiosk-high-contrast")

	k.SetHighContrast(false)
	if q := quietModules(k.qr.Image); q != normalQuiet {
		t.Errorf("after turning it off, quiet zone %d, want %d", q, normalQuiet)
	}
}

func sameColor(a, b color.Color) bool {
	ar, ag, ab, aa := a.RGBA()
	br, bg, bb, ba := b.RGBA()
	return ar>>8 == br>>8 && ag>>8 == bg>>8 && ab>>8 == bb>>8 && aa>>8 == ba>>8
}
