package main

import (
	"context"
	"log"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sampleEvery is the period of the resource samples.
const sampleEvery = time.Second

// point is one resource sample. CPU times and counters are cumulative.
type point struct {
	T          float64 `json:"t"` // seconds since the measured phase began (negative before)
	ManagerRSS float64 `json:"managerRSSMiB"`
	ManagerCPU float64 `json:"managerCPUSeconds"`
	ConsulCPU  float64 `json:"consulCPUSeconds,omitempty"`
	HarnessCPU float64 `json:"harnessCPUSeconds"`
	// StoreWrites are the publishes and reports the manager accepted.
	StoreWrites int `json:"storeWrites"`
	// Answers are long-poll answers with a new index, all nodes together.
	Answers int             `json:"longPollAnswers"`
	Consul  *consulCounters `json:"consul,omitempty"`
}

// sampler reads the manager's (and Consul's) /proc files and Consul's
// counters every second.
type sampler struct {
	manager, consul int // pids; consul 0 on bbolt
	consulAddr      string
	rec             *recorder
	http            *http.Client

	mu     sync.Mutex
	origin time.Time
	points []point
	failed bool
}

func newSampler(managerPID, consulPID int, consulAddr string, rec *recorder) *sampler {
	return &sampler{manager: managerPID, consul: consulPID, consulAddr: consulAddr, rec: rec,
		origin: time.Now(), http: &http.Client{Timeout: 5 * time.Second}}
}

// setOrigin makes t the zero of the timeline (the measured phase's start).
func (s *sampler) setOrigin(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	shift := s.origin.Sub(t).Seconds()
	for i := range s.points {
		s.points[i].T += shift
	}
	s.origin = t
}

// run samples until ctx ends.
func (s *sampler) run(ctx context.Context) {
	ticker := time.NewTicker(sampleEvery)
	defer ticker.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

// sample takes one point; a failed read is logged once and the point
// dropped (the process may be exiting).
func (s *sampler) sample(ctx context.Context) {
	at := time.Now() // the /proc reads are next, and take microseconds
	p, err := s.read(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if !s.failed && ctx.Err() == nil {
			log.Printf("sampler: %v", err)
			s.failed = true
		}
		return
	}
	p.T = at.Sub(s.origin).Seconds()
	s.points = append(s.points, p)
}

func (s *sampler) read(ctx context.Context) (point, error) {
	var p point
	var err error
	pid := strconv.Itoa(s.manager)
	if p.ManagerRSS, err = rssMiB(pid); err != nil {
		return p, err
	}
	if p.ManagerCPU, err = cpuSeconds(pid); err != nil {
		return p, err
	}
	if p.HarnessCPU, err = cpuSeconds("self"); err != nil {
		return p, err
	}
	p.StoreWrites, p.Answers = s.rec.storeWrites(), s.rec.longPollAnswers()
	if s.consul == 0 {
		return p, nil
	}
	if p.ConsulCPU, err = cpuSeconds(strconv.Itoa(s.consul)); err != nil {
		return p, err
	}
	c, err := readConsulCounters(ctx, s.http, s.consulAddr)
	if err != nil {
		return p, err
	}
	p.Consul = &c
	return p, nil
}

// timeline returns the points so far.
func (s *sampler) timeline() []point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]point(nil), s.points...)
}
