package ui

import (
	"context"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// SetupScreen asks for the Linkdesk service's address (and, for a private
// certificate authority, its CA file), checks it, and reports it on success.
// It is the first-run screen and the Settings page.
type SetupScreen struct {
	svc         ServiceConnector
	window      fyne.Window
	onConnected func(issuer, caFile string)

	issuer   *widget.Entry
	caFile   *widget.Entry
	check    *widget.Button
	cancel   *widget.Button
	progress busyBar
	status   *widget.Label
	body     *fyne.Container
	root     fyne.CanvasObject

	connect task
}

// NewSetupScreen makes the setup screen prefilled with issuer and caFile.
// onConnected runs (on the UI goroutine) once svc accepted the service.
func NewSetupScreen(svc ServiceConnector, w fyne.Window, issuer, caFile string, onConnected func(issuer, caFile string)) *SetupScreen {
	s := &SetupScreen{svc: svc, window: w, onConnected: onConnected}
	s.issuer = widget.NewEntry()
	s.issuer.PlaceHolder = "https://link.example.com"
	s.issuer.SetText(issuer)
	s.issuer.OnSubmitted = func(string) { s.Check() }
	s.issuer.OnChanged = func(string) { s.setStatus("", widget.MediumImportance) }

	s.caFile = widget.NewEntry()
	s.caFile.PlaceHolder = lang.L("Only if your organisation uses its own certificate authority")
	s.caFile.SetText(caFile)
	s.caFile.OnSubmitted = func(string) { s.Check() }
	browse := widget.NewButtonWithIcon(lang.L("Choose…"), theme.FolderOpenIcon(), s.chooseCA)

	s.check = widget.NewButtonWithIcon(lang.L("Check and use"), theme.ConfirmIcon(), s.Check)
	s.check.Importance = widget.HighImportance
	s.cancel = widget.NewButtonWithIcon(lang.L("Cancel"), theme.CancelIcon(), s.Cancel)
	s.cancel.Hide()
	s.progress = newBusyBar()
	s.status = wrapped("")
	s.status.Hide()

	s.body = container.NewVBox(
		heading(lang.L("Connect to your Linkdesk service")),
		wrapped(lang.L("Enter the address of the Linkdesk service you use. Whoever runs it can tell you; it usually starts with https://.")),
		widget.NewForm(
			widget.NewFormItem(lang.L("Service address"), s.issuer),
			widget.NewFormItem(lang.L("CA file (optional)"), container.NewBorder(nil, nil, nil, browse, s.caFile)),
		),
		s.progress,
		s.status,
		container.NewHBox(layoutSpacer(), s.cancel, s.check),
	)
	s.root = container.NewVScroll(container.NewPadded(limitWidth(620, s.body)))
	return s
}

// Content is the screen's canvas object.
func (s *SetupScreen) Content() fyne.CanvasObject { return s.root }

// Focus puts the keyboard focus on the address entry.
func (s *SetupScreen) Focus(c fyne.Canvas) {
	if c != nil {
		c.Focus(s.issuer)
	}
}

// Stop abandons a check in progress (the screen is going away).
func (s *SetupScreen) Stop() { s.connect.stop() }

// ShowError shows err (say, from connecting at start-up) under the form.
func (s *SetupScreen) ShowError(err error) {
	s.setStatus(Explain(err), widget.DangerImportance)
}

func (s *SetupScreen) chooseCA() {
	if s.window == nil {
		return
	}
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			return
		}
		_ = r.Close()
		s.caFile.SetText(r.URI().Path())
	}, s.window)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".pem", ".crt", ".cer"}))
	d.Show()
}

// Check checks the entered service and, when it answers, uses it.
func (s *SetupScreen) Check() {
	if s.connect.running() {
		return
	}
	issuer := strings.TrimRight(strings.TrimSpace(s.issuer.Text), "/")
	if issuer == "" {
		s.setStatus(lang.L("Enter the service address first."), widget.DangerImportance)
		return
	}
	if !strings.Contains(issuer, "://") {
		issuer = "https://" + issuer
		s.issuer.SetText(issuer)
	}
	caFile := strings.TrimSpace(s.caFile.Text)
	s.setBusy(true)
	s.setStatus(lang.L("Checking {{.Service}} …", map[string]any{"Service": issuer}), widget.MediumImportance)
	s.connect.start(func(ctx context.Context) error {
		return s.svc.Connect(ctx, issuer, caFile)
	}, func(err error) {
		s.setBusy(false)
		if err != nil {
			s.setStatus(Explain(err), widget.DangerImportance)
			return
		}
		s.setStatus(lang.L("Connected to {{.Service}}.", map[string]any{"Service": issuer}), widget.SuccessImportance)
		if s.onConnected != nil {
			s.onConnected(issuer, caFile)
		}
	})
}

// Cancel stops a check in progress.
func (s *SetupScreen) Cancel() {
	s.connect.stop()
	s.setBusy(false)
	s.setStatus(lang.L("Check cancelled."), widget.MediumImportance)
}

func (s *SetupScreen) setBusy(busy bool) {
	if busy {
		s.check.Disable()
		s.cancel.Show()
	} else {
		s.check.Enable()
		s.cancel.Hide()
	}
	s.progress.set(busy)
	s.relayout()
}

func (s *SetupScreen) setStatus(msg string, imp widget.Importance) {
	s.status.SetText(msg)
	s.status.Importance = imp
	if msg == "" {
		s.status.Hide()
	} else {
		s.status.Show()
	}
	s.status.Refresh()
	s.relayout()
}

func (s *SetupScreen) relayout() {
	for range 2 {
		s.body.Refresh()
	}
}
