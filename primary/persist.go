package primary

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/repld/repld/internal/datadir"
)

// Files in the data directory.
const (
	// RegistryFile holds the registry of replicas as JSON.
	RegistryFile = "registry.json"
)

// registryVersion is the format version of RegistryFile.
const registryVersion = 1

// registryFile is RegistryFile's content.
type registryFile struct {
	Version  int             `json:"version"`
	Replicas []ReplicaStatus `json:"replicas"`
}

// loadRegistry reads RegistryFile from dataDir; a missing file is an empty
// registry.
func loadRegistry(dataDir string) ([]ReplicaStatus, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, RegistryFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("primary: read registry: %w", err)
	}
	return parseRegistry(b)
}

// parseRegistry decodes RegistryFile's content and checks it.
func parseRegistry(b []byte) ([]ReplicaStatus, error) {
	var f registryFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("primary: registry: %w", err)
	}
	if f.Version != registryVersion {
		return nil, fmt.Errorf("primary: registry: version %d: this build reads version %d", f.Version, registryVersion)
	}
	seen := make(map[string]bool, len(f.Replicas))
	for _, r := range f.Replicas {
		if r.Name == "" {
			return nil, errors.New("primary: registry: a replica without a name")
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("primary: registry: replica %q listed twice", r.Name)
		}
		seen[r.Name] = true
		if _, err := parseState(r.State); err != nil {
			return nil, fmt.Errorf("primary: registry: replica %q: %w", r.Name, err)
		}
		if (r.State == StateQuarantined.String()) != (r.Quarantine != nil) {
			return nil, fmt.Errorf("primary: registry: replica %q: state %q does not match its quarantine record", r.Name, r.State)
		}
	}
	return f.Replicas, nil
}

// saveRegistry persists rs in dataDir.
func saveRegistry(dataDir string, rs []ReplicaStatus) error {
	if err := datadir.WriteJSON(dataDir, RegistryFile, registryFile{Version: registryVersion, Replicas: rs}); err != nil {
		return fmt.Errorf("primary: write registry: %w", err)
	}
	return nil
}
