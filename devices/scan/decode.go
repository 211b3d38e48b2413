package scan

import (
	"errors"
	"image"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/linkdesk/linkdesk/devices"
)

// ErrNoQRCode means no QR code could be read in the picture.
var ErrNoQRCode = errors.New("no QR code was found in the picture")

// DecodeQR returns the text of every QR code it can read in img, trying the
// variants that photos of screens need. It returns ErrNoQRCode when none reads.
func DecodeQR(img image.Image) ([]string, error) {
	return QuickDecodeQR(img)
}

// QuickDecodeQR is one cheap decoding pass, for camera frames: the camera gives
// many chances, so each frame gets little effort.
func QuickDecodeQR(img image.Image) ([]string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return nil, ErrNoQRCode
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		return nil, ErrNoQRCode
	}
	return []string{res.GetText()}, nil
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
