package scan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/draw"
	_ "image/gif" // ReadImage accepts GIF pictures.
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"
)

// MaxImagePixels is the largest picture ReadImage accepts (50 megapixels): a
// bigger one would take too much memory to decode and is not a photo of a screen.
const MaxImagePixels = 50_000_000

// maxImageBytes bounds how much of a file ReadImage reads, whatever its header claims.
const maxImageBytes = 256 << 20

// ErrImageTooLarge means the picture has more than MaxImagePixels pixels.
var ErrImageTooLarge = errors.New("the picture is too large (over 50 megapixels)")

// ErrNotAnImage means the data is not a PNG, JPEG or GIF picture (or is damaged).
var ErrNotAnImage = errors.New("this is not a picture that can be read (PNG, JPEG or GIF)")

// ReadImage decodes a PNG, JPEG or GIF picture from r. It checks the size in the
// header before decoding, refusing pictures over MaxImagePixels with
// ErrImageTooLarge, and turns a JPEG upright according to its EXIF orientation,
// since phones often store photos sideways with that tag.
func ReadImage(r io.Reader) (image.Image, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxImageBytes+1))
	if err != nil {
		return nil, &fileError{"the picture could not be read", err}
	}
	if len(data) > maxImageBytes {
		return nil, ErrImageTooLarge
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, ErrNotAnImage
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, ErrNotAnImage
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, ErrImageTooLarge
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, ErrNotAnImage
	}
	if format == "jpeg" {
		img = applyOrientation(img, jpegOrientation(data))
	}
	return img, nil
}

// ReadImageFile is ReadImage on the file at path.
func ReadImageFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &fileError{"the file does not exist", err}
		}
		return nil, &fileError{"the file could not be opened", err}
	}
	defer f.Close()
	return ReadImage(f)
}

// fileError is a plain-words message for the person, keeping the system's
// error (with its path and errno) for errors.Is and logs.
type fileError struct {
	msg string
	err error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }

// jpegOrientation returns the EXIF orientation (1-8) of a JPEG, or 1 when it
// has none or it cannot be read.
func jpegOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return 1
	}
	p := 2
	for p+4 <= len(data) {
		if data[p] != 0xFF {
			return 1
		}
		marker := data[p+1]
		if marker == 0xD9 || marker == 0xDA { // end of image, start of scan
			return 1
		}
		if marker == 0xFF { // fill byte
			p++
			continue
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if n < 2 || p+2+n > len(data) {
			return 1
		}
		seg := data[p+4 : p+2+n]
		if marker == 0xE1 && len(seg) > 6 && string(seg[:6]) == "Exif\x00\x00" {
			return exifOrientation(seg[6:])
		}
		p += 2 + n
	}
	return 1
}

// exifOrientation reads tag 0x0112 from IFD0 of a TIFF-structured EXIF block.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > len(t) {
		return 1
	}
	count := int(bo.Uint16(t[ifd:]))
	for i := 0; i < count; i++ {
		e := ifd + 2 + 12*i
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) == 0x0112 && bo.Uint16(t[e+2:]) == 3 { // SHORT
			if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

// applyOrientation turns img upright for EXIF orientation o (1 = as stored).
func applyOrientation(img image.Image, o int) image.Image {
	if o <= 1 || o > 8 {
		return img
	}
	b := img.Bounds()
	src := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(src, src.Bounds(), img, b.Min, draw.Src)
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // rotated 180°
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // stored turned 90° anticlockwise: turn it clockwise
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // stored turned 90° clockwise: turn it anticlockwise
				dx, dy = y, w-1-x
			}
			si := src.PixOffset(x, y)
			di := dst.PixOffset(dx, dy)
			copy(dst.Pix[di:di+4], src.Pix[si:si+4])
		}
	}
	return dst
}
