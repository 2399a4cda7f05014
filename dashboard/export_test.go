package dashboard

import "time"

// SetHeartbeat shortens the event stream's heartbeat for a test; the returned func puts
// it back.
func SetHeartbeat(d time.Duration) func() {
	old := heartbeat
	heartbeat = d
	return func() { heartbeat = old }
}
