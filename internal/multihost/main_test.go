package multihost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Bounds of the docker and go commands the harness runs.
const (
	// probeTimeout bounds docker info, which decides whether tests run.
	probeTimeout = 20 * time.Second
	// goBuildTimeout bounds building the static binaries; a cold build
	// cache compiles every dependency for the static configuration.
	goBuildTimeout = 5 * time.Minute
	// imageTimeout bounds docker build and docker rmi.
	imageTimeout = 2 * time.Minute
	// dockerTimeout bounds every other docker command (run, kill, pause,
	// network changes, inspect, logs, rm).
	dockerTimeout = 30 * time.Second
)

// runLabel labels every container and network of a test run with the
// run's id, so that the end of the run can remove whatever a test left.
const runLabel = "repld.multihost.run"

// theSuite is what every test of the binary shares. TestMain sets it once
// before running the tests (a test binary has no other way to share what
// it prepares once); afterwards only its own synchronised fields change.
var theSuite *suite

// suite is the per-binary part of the harness: the Docker probe, the
// image and the operator's tool, built on first use and removed by
// TestMain.
type suite struct {
	// skip says why the tests cannot run here (no usable Docker engine);
	// "" when they can.
	skip string
	// runID is the random suffix of the image tag and the value of
	// runLabel.
	runID string
	// dir holds the image's build context and the replctl binary.
	dir string

	once     sync.Once
	buildErr error
	image    string // the image tag once built
	replctl  string // path of the replctl binary once built
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	s, err := newSuite(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	theSuite = s
	code := m.Run()
	if err := s.close(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// newSuite probes the Docker engine and makes the run's directory.
func newSuite(ctx context.Context) (*suite, error) {
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("multihost: run id: %w", err)
	}
	s := &suite{runID: hex.EncodeToString(id)}
	if runtime.GOOS != "linux" {
		// The test reaches the containers at their addresses on a bridge
		// network, which only a Linux host running the engine routes.
		s.skip = "no Docker engine on this host: the test process runs on " + runtime.GOOS + ", and only the Linux host of an engine reaches its containers' network"
		return s, nil
	}
	if _, err := exec.LookPath("docker"); err != nil {
		s.skip = "no Docker engine: docker is not on PATH"
		return s, nil
	}
	if _, err := docker(ctx, probeTimeout, "info", "--format", "{{.ServerVersion}}"); err != nil {
		s.skip = "no Docker engine: " + err.Error()
		return s, nil
	}
	dir, err := os.MkdirTemp("", "repld-multihost-")
	if err != nil {
		return nil, fmt.Errorf("multihost: %w", err)
	}
	s.dir = dir
	return s, nil
}

// require skips t when there is no Docker engine (or in -short mode), and
// otherwise builds the image on first use, failing t if that fails.
func (s *suite) require(t *testing.T) {
	t.Helper()
	if s.skip != "" {
		t.Skip(s.skip)
	}
	if testing.Short() {
		t.Skip("runs repld nodes in Docker containers")
	}
	s.once.Do(func() { s.buildErr = s.build(context.Background()) })
	if s.buildErr != nil {
		t.Fatal(s.buildErr)
	}
}

// build compiles repld as a static Linux binary and replctl for this host,
// and builds the node image, FROM scratch with only repld in it.
func (s *suite) build(ctx context.Context) error {
	imageDir := filepath.Join(s.dir, "image")
	if err := os.Mkdir(imageDir, 0o755); err != nil {
		return fmt.Errorf("multihost: %w", err)
	}
	for _, b := range []struct {
		pkg, out string
		env      []string
	}{
		// Static, so that it runs in an image with nothing else in it.
		{"github.com/repld/repld/cmd/repld", filepath.Join(imageDir, "repld"), []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}},
		// The operator's tool runs here, beside the test.
		{"github.com/repld/repld/cmd/replctl", filepath.Join(s.dir, "replctl"), nil},
	} {
		bctx, cancel := context.WithTimeout(ctx, goBuildTimeout)
		cmd := exec.CommandContext(bctx, "go", "build", "-trimpath", "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), b.env...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("multihost: go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	s.replctl = filepath.Join(s.dir, "replctl")
	dockerfile := "FROM scratch\nCOPY repld /repld\nENTRYPOINT [\"/repld\"]\n"
	if err := os.WriteFile(filepath.Join(imageDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return fmt.Errorf("multihost: %w", err)
	}
	tag := "repld-multihost:" + s.runID
	if _, err := docker(ctx, imageTimeout, "build", "--quiet", "--label", runLabel+"="+s.runID, "--tag", tag, imageDir); err != nil {
		return fmt.Errorf("multihost: build the node image: %w", err)
	}
	s.image = tag
	return nil
}

// close removes every container and network labelled with the run's id
// (a test's cleanup has normally done so already), then the image and the
// run's directory.
func (s *suite) close(ctx context.Context) error {
	if s.skip != "" {
		return nil
	}
	var errs []error
	filter := "label=" + runLabel + "=" + s.runID
	if ids, err := docker(ctx, dockerTimeout, "ps", "--all", "--quiet", "--filter", filter); err != nil {
		errs = append(errs, err)
	} else if ids != "" {
		_, err := docker(ctx, dockerTimeout, append([]string{"rm", "--force", "--volumes"}, strings.Fields(ids)...)...)
		errs = append(errs, err)
	}
	if ids, err := docker(ctx, dockerTimeout, "network", "ls", "--quiet", "--filter", filter); err != nil {
		errs = append(errs, err)
	} else if ids != "" {
		_, err := docker(ctx, dockerTimeout, append([]string{"network", "rm"}, strings.Fields(ids)...)...)
		errs = append(errs, err)
	}
	if s.image != "" {
		_, err := docker(ctx, imageTimeout, "rmi", "--force", s.image)
		errs = append(errs, err)
	}
	errs = append(errs, os.RemoveAll(s.dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("multihost: clean up the run's Docker resources: %w", err)
	}
	return nil
}

// docker runs the docker command with args, bounded by timeout, and
// returns its standard output without surrounding space. The error names
// the command and carries its standard error.
func docker(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	// A killed docker client may leave a child holding the pipes: do not
	// wait for them long.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
