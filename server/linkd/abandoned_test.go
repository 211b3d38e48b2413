package linkd_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// A device that hangs up while its authorization is being stored is no fault of
// linkd's: it is logged at INFO, not as an error (it was an ERROR line carrying the
// store's "transaction has already been committed or rolled back").
func TestAbandonedDeviceAuthorizationIsNotAnError(t *testing.T) {
	var logs syncBuffer
	in := linkdtest.Start(t, linkdtest.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, hangUp := context.WithCancel(context.Background())
	hangUp() // the device is gone before linkd stores its request
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, in.URL+"/device_authorization",
		strings.NewReader("client_id="+devices.KioskClientID+"&scope=openid"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	in.Server.Handler().ServeHTTP(httptest.NewRecorder(), req)
	if l := logs.String(); strings.Contains(l, "level=ERROR") || !strings.Contains(l, "abandoned by the device") {
		t.Errorf("log of a device authorization whose device hung up:\n%s\nwant an INFO line, no error", l)
	}
}
