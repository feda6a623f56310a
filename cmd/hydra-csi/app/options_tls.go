package app

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/hydra-csi/hydra/pkg/client"
)

// managerTLSOptions are how hydra-csi reaches an https:// manager: the CA
// that signed its certificate and, when the manager requires one
// (--tls-client-ca), this plugin's client certificate. The environment
// variables are the hydra CLI's.
type managerTLSOptions struct {
	// ManagerCAFile is a PEM CA bundle (default $HYDRA_CA_FILE).
	ManagerCAFile string
	// ManagerClientCert and ManagerClientKey are a PEM client certificate
	// and its key (default $HYDRA_CLIENT_CERT, $HYDRA_CLIENT_KEY), re-read
	// when they change.
	ManagerClientCert, ManagerClientKey string
}

// managerTLSFromEnv reads the defaults from the environment.
func managerTLSFromEnv(getenv func(string) string) managerTLSOptions {
	return managerTLSOptions{
		ManagerCAFile:     getenv("HYDRA_CA_FILE"),
		ManagerClientCert: getenv("HYDRA_CLIENT_CERT"),
		ManagerClientKey:  getenv("HYDRA_CLIENT_KEY"),
	}
}

func (o *managerTLSOptions) addManagerTLSFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ManagerCAFile, "manager-ca-file", o.ManagerCAFile, "PEM CA bundle to verify an https:// manager with, instead of the system's (default $HYDRA_CA_FILE)")
	fs.StringVar(&o.ManagerClientCert, "manager-client-cert", o.ManagerClientCert, "PEM client certificate for a manager that requires one (mutual TLS), re-read when it changes (default $HYDRA_CLIENT_CERT)")
	fs.StringVar(&o.ManagerClientKey, "manager-client-key", o.ManagerClientKey, "PEM private key of --manager-client-cert (default $HYDRA_CLIENT_KEY)")
}

// validateManagerTLS checks that the settings fit together. The files
// are read when the client is made, at start (their errors name them):
// Validate also runs where they do not exist (tests/manifests).
func (o *managerTLSOptions) validateManagerTLS() error {
	if (o.ManagerClientCert == "") != (o.ManagerClientKey == "") {
		return errors.New("--manager-client-cert and --manager-client-key go together")
	}
	return nil
}

// clientOptions are the manager client's options: the token and the TLS
// settings. With TLS settings, a manager URL that is not https:// is
// refused, so the token never travels in clear by mistake.
func (o *managerTLSOptions) clientOptions(token string) []client.Option {
	return []client.Option{client.WithToken(token), client.WithCAFile(o.ManagerCAFile),
		client.WithClientCert(o.ManagerClientCert, o.ManagerClientKey)}
}
