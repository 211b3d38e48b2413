package accounts

import "fmt"

// What every sign-in page says about credentials, so the app's sign-in (/login) and
// the phone pages (/signin) use the same words for the same thing.
const (
	// WrongPasswordMessage: the username and password do not match (never saying which).
	WrongPasswordMessage = "That username and password don’t match. Check them and try again."
	// WrongTOTPMessage: the one-time code is not the one the authenticator shows now.
	WrongTOTPMessage = "That one-time code is not right. Enter the 6 digits your authenticator app shows now."
	// TOTPUsedMessage: a right code that already signed in; the person did nothing
	// wrong but must wait for the authenticator's next code.
	TOTPUsedMessage = "That one-time code was already used. Wait for the next code your authenticator app shows (a new one comes every 30 seconds), then enter it."
)

// SignInPausedMessage says that signing in is paused for minutes more after too many
// wrong passwords or one-time codes.
func SignInPausedMessage(minutes int) string {
	if minutes <= 1 {
		return "For your safety, signing in to this account is paused. Wait 1 minute, then try again."
	}
	return fmt.Sprintf("For your safety, signing in to this account is paused. Wait %d minutes, then try again.", minutes)
}
