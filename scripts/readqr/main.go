// Command readqr prints the user code that the QR code in a picture carries for an
// issuer, as Linkdesk's scanner reads it (devices/scan), and exits 1 when there is
// none. The Xvfb test uses it to wait until a window really shows its code: a program
// logs a state before the screen shows it.
//
//	go run ./scripts/readqr --issuer https://127.0.0.1:8443 picture.png
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/linkdesk/linkdesk/devices/scan"
)

func main() {
	issuer := flag.String("issuer", "", "the service the code must be for")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: readqr --issuer URL PICTURE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *issuer == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	img, err := scan.ReadImageFile(flag.Arg(0))
	if err == nil {
		var code string
		if code, err = scan.CodeFromImage(img, *issuer); err == nil {
			fmt.Println(code)
			return
		}
	}
	fmt.Fprintf(os.Stderr, "readqr: %s: %v\n", flag.Arg(0), err)
	os.Exit(1)
}
