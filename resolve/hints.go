package resolve

import (
	"errors"
	"fmt"

	"github.com/airgap-bundle/airgap-bundle/registry"
)

// explain adds what to do to the registry errors users meet most, as
// registry classifies them.
func explain(err error, host string) error {
	if err == nil {
		return nil
	}
	if registry.IsAuth(err) {
		return fmt.Errorf("%w: %w\n    hint: registry %s refused the credentials; set registries.%q.auth (password-env, file or helper), or check the ones it names", registry.ErrAuth, err, host, host)
	}
	var re *registry.ReachError
	if errors.As(registry.Reach(host, err), &re) {
		switch re.Kind {
		case registry.ReachTLSAuthority:
			return fmt.Errorf("%w: %w\n    hint: give the registry's CA with registries.%q.ca-file (TLS verification stays on); insecure = true turns it off", registry.ErrTLS, err, host)
		case registry.ReachTLSName, registry.ReachTLSInvalid:
			return fmt.Errorf("%w: %w\n    hint: %s", registry.ErrTLS, err, re.Hint)
		case registry.ReachPlainHTTP:
			return fmt.Errorf("%w\n    hint: registry %s speaks plain HTTP; if that is intended (a loopback or lab registry), set registries.%q.insecure = true", err, host, host)
		}
	}
	return err
}
