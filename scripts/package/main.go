// Command package is `make package`: it builds what Linkdesk ships into build/package/
// (or -out):
//
//   - linkd_VERSION_amd64.deb, a Debian package of linkd and linkdevice with the
//     hardened systemd unit (packaging/linkd.service) and /etc/default/linkd, made with
//     nfpm (github.com/goreleaser/nfpm/v2);
//   - Linkdesk.tar.xz, the desktop app as `fyne package` lays it out (usr/local/bin,
//     the .desktop entry, the icon), with MimeType=x-scheme-handler/linkdesk added to
//     the entry, since fyne's template has no way to declare a URL scheme;
//   - cross/: linkdesk.exe (cgo, with Debian's gcc-mingw-w64) and linkd/linkdevice for
//     windows/amd64, darwin/amd64 and darwin/arm64 (plain Go), so a change that breaks
//     another system is caught.
//
// Usage: go run ./scripts/package [-out DIR] [-only deb,desktop,cross]
//
// The version is `git describe --tags` when the repository has a tag, otherwise
// FyneApp.toml's Version plus the commit (0.1.0+git.272f541).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
)

func main() {
	out := flag.String("out", "build/package", "directory for the packages")
	only := flag.String("only", "deb,desktop,cross", "comma-separated parts to build: deb, desktop, cross")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, strings.Split(*only, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string, parts []string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	version, err := projectVersion(root)
	if err != nil {
		return err
	}
	fmt.Println("version", version)
	for _, p := range parts {
		switch strings.TrimSpace(p) {
		case "deb":
			bin := filepath.Join(out, "linux-amd64")
			if err := buildServerBinaries(ctx, root, bin, "linux", "amd64"); err != nil {
				return err
			}
			deb, err := writeDeb(root, bin, version, out)
			if err != nil {
				return err
			}
			fmt.Println("wrote", deb)
		case "desktop":
			tarball, err := desktopPackage(ctx, root, out, version)
			if err != nil {
				return err
			}
			fmt.Println("wrote", tarball)
		case "cross":
			built, err := crossBuild(ctx, root, filepath.Join(out, "cross"))
			for _, b := range built {
				fmt.Println("wrote", b)
			}
			if err != nil {
				return err
			}
		case "":
		default:
			return fmt.Errorf("-only: unknown part %q (deb, desktop, cross)", p)
		}
	}
	return nil
}
