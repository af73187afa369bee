package metrics

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
)

// RegisterProcess registers the process_* series of the Prometheus
// clients' process collector, read from /proc/self at each scrape (Linux;
// elsewhere they are absent).
func (r *Registry) RegisterProcess() {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return
	}
	var st procStat
	read := func() *procStat { st.read(); return &st }
	r.NewCounterFunc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
		func() float64 { return read().cpu })
	r.NewGaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.",
		func() float64 { return read().rss })
	r.NewGaugeFunc("process_virtual_memory_bytes", "Virtual memory size in bytes.",
		func() float64 { return read().vsize })
	r.NewGaugeFunc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
		func() float64 { return read().start })
	r.NewGaugeFunc("process_open_fds", "Number of open file descriptors.", func() float64 {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return -1
		}
		return float64(len(ents))
	})
	r.NewGaugeFunc("process_max_fds", "Maximum number of open file descriptors.", func() float64 {
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return -1
		}
		return float64(rl.Cur)
	})
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// procStat is what /proc/self/stat says; each scrape reads it once per
// series, which is cheap and keeps the series independent.
type procStat struct {
	cpu, rss, vsize, start float64
}

func (p *procStat) read() {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
	if len(f) < 22 {
		return
	}
	num := func(j int) float64 {
		v, _ := strconv.ParseUint(string(f[j]), 10, 64)
		return float64(v)
	}
	p.cpu = (num(11) + num(12)) / clockTicks
	p.start = bootTime() + num(19)/clockTicks
	p.vsize = num(20)
	p.rss = num(21) * float64(os.Getpagesize())
}

var bootSeconds float64

// bootTime is btime from /proc/stat: the boot, in seconds since the epoch.
func bootTime() float64 {
	if bootSeconds != 0 {
		return bootSeconds
	}
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("btime ")); ok {
			v, _ := strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
			bootSeconds = v
			return v
		}
	}
	return 0
}

// RegisterGo registers the basic go_* series of the Prometheus clients'
// Go collector: goroutines, threads, version and the memory statistics
// an operator graphs.
func (r *Registry) RegisterGo() {
	r.NewGaugeFunc("go_goroutines", "Number of goroutines that currently exist.",
		func() float64 { return float64(runtime.NumGoroutine()) })
	r.NewGaugeFunc("go_threads", "Number of OS threads created.", func() float64 {
		n, _ := runtime.ThreadCreateProfile(nil)
		return float64(n)
	})
	info := r.NewGaugeVec("go_info", "Information about the Go environment.", "version")
	info.With(runtime.Version()).Set(1)
	var ms runtime.MemStats
	mem := func(name, help string, get func() float64, counter bool) {
		fn := func() float64 { runtime.ReadMemStats(&ms); return get() }
		if counter {
			r.NewCounterFunc(name, help, fn)
		} else {
			r.NewGaugeFunc(name, help, fn)
		}
	}
	mem("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", func() float64 { return float64(ms.Alloc) }, false)
	mem("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", func() float64 { return float64(ms.TotalAlloc) }, true)
	mem("go_memstats_sys_bytes", "Number of bytes obtained from system.", func() float64 { return float64(ms.Sys) }, false)
	mem("go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed.", func() float64 { return float64(ms.Mallocs) }, true)
	mem("go_memstats_frees_total", "Total number of heap objects frees.", func() float64 { return float64(ms.Frees) }, true)
	mem("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", func() float64 { return float64(ms.HeapAlloc) }, false)
	mem("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system.", func() float64 { return float64(ms.HeapSys) }, false)
	mem("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", func() float64 { return float64(ms.HeapInuse) }, false)
	mem("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.", func() float64 { return float64(ms.HeapIdle) }, false)
	mem("go_memstats_heap_released_bytes", "Number of heap bytes released to OS.", func() float64 { return float64(ms.HeapReleased) }, false)
	mem("go_memstats_heap_objects", "Number of currently allocated objects.", func() float64 { return float64(ms.HeapObjects) }, false)
	mem("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments.", func() float64 { return float64(ms.StackInuse) }, false)
	mem("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", func() float64 { return float64(ms.NextGC) }, false)
	mem("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", func() float64 { return float64(ms.LastGC) / 1e9 }, false)
	r.NewGaugeFunc("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100.", func() float64 {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return float64(p)
	})
	r.NewGaugeFunc("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64.",
		func() float64 { return float64(debug.SetMemoryLimit(-1)) })
	r.NewGaugeFunc("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously.",
		func() float64 { return float64(runtime.GOMAXPROCS(0)) })
}
