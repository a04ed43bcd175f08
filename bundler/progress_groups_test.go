package bundler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// openTasks records the tasks a build starts and ends: how many of each
// kind ran at once, and their totals.
type openTasks struct {
	mu     sync.Mutex
	open   map[string]int // kind ("download", "write") -> running now
	most   map[string]int
	totals map[string]int64
	added  map[string]int64
	done   map[string]bool
}

func newOpenTasks() *openTasks {
	return &openTasks{open: map[string]int{}, most: map[string]int{}, totals: map[string]int64{}, added: map[string]int64{}, done: map[string]bool{}}
}

func (o *openTasks) Task(name string, total int64, _ progress.Unit) progress.Task {
	o.mu.Lock()
	defer o.mu.Unlock()
	kind, _, _ := strings.Cut(name, " ")
	o.open[kind]++
	o.most[kind] = max(o.most[kind], o.open[kind])
	o.totals[name] = total
	return &openTask{o: o, name: name, kind: kind}
}

func (o *openTasks) Wait() {}

type openTask struct {
	o          *openTasks
	name, kind string
	once       sync.Once
}

func (t *openTask) Add(n int64) {
	t.o.mu.Lock()
	defer t.o.mu.Unlock()
	t.o.added[t.name] += n
}

func (t *openTask) Done(error) {
	t.once.Do(func() {
		t.o.mu.Lock()
		defer t.o.mu.Unlock()
		t.o.open[t.kind]--
		t.o.done[t.name] = true
	})
}

// Issue 20: a build of many groups shows the groups being downloaded and
// written, and one task for all the archives, not a task per group from
// start to end (30 groups drew 60 bars on a terminal, the queued ones
// empty). A group's download task runs from its first download to its
// last, so with jobs downloads at a time at most jobs of them run at once.
func TestBuildProgressFollowsTheGroupsAtWork(t *testing.T) {
	const groups, jobs = 12, 2
	f := memFetcher{}
	var body strings.Builder
	lock := &lockfile.Lock{Version: lockfile.Version}
	for i := range groups {
		img, err := fixtures.Image(fmt.Sprintf("group-%02d", i), fixtures.LinuxAMD64, 3)
		if err != nil {
			t.Fatal(err)
		}
		f.addImage(t, img)
		ref := fmt.Sprintf("registry.test/g%02d:v1", i)
		fmt.Fprintf(&body, "[[group]]\nname = \"g%02d\"\narchive = \"g%02d.tar\"\nplatforms = [\"linux/amd64\"]\nimages = [%q]\n\n", i, i, ref)
		lock.Groups = append(lock.Groups, lockfile.Group{Name: fmt.Sprintf("g%02d", i), Platforms: []string{"linux/amd64"}, Index: "original",
			Images: []lockfile.Image{lockEntry(t, ref, img, "linux/amd64")}})
	}
	spec := loadSpec(t, body.String())
	if plan, err := NewPlan(spec, lock, LockOptions{}); err != nil || len(plan.Drift()) > 0 {
		t.Fatalf("test lockfile drifts from the spec: %v %v", err, plan.Drift())
	}
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// every download takes a moment, so that tasks left running overlap
	slow := &slowFetcher{memFetcher: f, delay: func(digest.Digest) time.Duration { return 3 * time.Millisecond }}
	rec := newOpenTasks()
	results, err := Build(context.Background(), spec, lock, c, slow, BuildOptions{OutputDir: t.TempDir(), Jobs: jobs, Progress: rec})
	if err != nil {
		t.Fatal(err)
	}
	if rec.most["download"] > jobs {
		t.Errorf("%d download tasks ran at once, want at most %d (the groups with a download running)", rec.most["download"], jobs)
	}
	if rec.most["write"] > writers {
		t.Errorf("%d write tasks ran at once, want at most %d (the archives being written)", rec.most["write"], writers)
	}
	all := fmt.Sprintf("all %d archives", groups)
	var sum int64
	for _, r := range results {
		sum += rec.totals["write "+r.Path[strings.LastIndex(r.Path, "/")+1:]]
	}
	if rec.totals[all] != sum || rec.added[all] != sum || !rec.done[all] {
		t.Errorf("%q: total %d, counted %d, done %v; want the %d bytes of the %d archives' tasks, done", all, rec.totals[all], rec.added[all], rec.done[all], sum, groups)
	}
	for i := range groups {
		if name := fmt.Sprintf("download g%02d", i); !rec.done[name] {
			t.Errorf("%s: never started or never ended", name)
		}
	}
}
