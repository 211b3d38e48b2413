// Package scan gets a Linkdesk user code out of pictures: QR codes in photos,
// image files, the clipboard and camera frames. Pictures stay on this machine;
// nothing here talks to the network. It never imports Fyne.
package scan
