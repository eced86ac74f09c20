package webhook

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of the delivery.
const (
	maxRetryAfter = 24 * time.Hour // a longer Retry-After is cut to this
	maxSlowPause  = time.Minute    // the longest pause a 429/502/504 without Retry-After imposes
	maxReadBody   = 64 << 10       // response bytes read (and discarded) to reuse the connection
	userAgent     = "vigie-webhook/1"
	drainPoll     = 5 * time.Millisecond // how often Close looks whether the outbox is empty
)

// endpoint delivers the outbox's messages to one URL: a scheduler
// goroutine starts attempts when they are due, at most limit at a time;
// each attempt's result updates the outbox. It is owned by the writer,
// which stops it and waits for it (stop).
type endpoint struct {
	s      *settings
	log    *slog.Logger
	client *http.Client
	now    func() time.Time
	rng    func() float64 // [0, 1)

	mu       sync.Mutex // guards what follows and the outbox
	box      *outbox
	queue    queue
	inflight int
	limit    int       // current concurrency, 1..s.concurrency
	pause    time.Time // no attempt starts before
	changed  chan struct{}
	attempts sync.WaitGroup

	cancel context.CancelFunc
	done   chan struct{}
}

func newEndpoint(s *settings, box *outbox, log *slog.Logger) *endpoint {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = s.concurrency
	tr.MaxIdleConnsPerHost = s.concurrency
	if s.tls != nil {
		tr.TLSClientConfig = s.tls
	}
	e := &endpoint{
		s:   s,
		log: log,
		client: &http.Client{
			Transport: tr,
			// A redirect is a failure (Standard Webhooks): the URL should
			// be updated instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now:     time.Now,
		rng:     rand.Float64,
		box:     box,
		limit:   s.concurrency,
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	for _, m := range box.sortedPending() {
		heap.Push(&e.queue, m)
	}
	return e
}

// start runs the scheduler until stop.
func (e *endpoint) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() {
		defer close(e.done)
		e.schedule(ctx)
	}()
}

// stop ends the scheduler and the attempts in flight (which are not
// counted: their messages stay pending) and waits for them.
func (e *endpoint) stop() {
	e.cancel()
	<-e.done
	e.attempts.Wait()
}

// notify wakes the scheduler.
func (e *endpoint) notify() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

func (e *endpoint) schedule(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Duration(-1)
		e.mu.Lock()
		now := e.now()
		for e.inflight < e.limit && e.queue.Len() > 0 {
			m := e.queue[0]
			at := m.next
			if e.pause.After(at) {
				at = e.pause
			}
			if d := at.Sub(now); d > 0 {
				wait = d
				break
			}
			heap.Pop(&e.queue)
			body, err := e.box.load(m)
			if err != nil {
				// The outbox is broken: the change stays in it, and the
				// writer's next call reports the error.
				e.log.Error("webhook outbox", "err", err)
				if e.box.err == nil {
					e.box.err = err
				}
				continue
			}
			e.inflight++
			e.attempts.Add(1)
			go e.attempt(ctx, m, body)
		}
		e.mu.Unlock()
		var tick <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-e.changed:
		case <-tick:
		}
	}
}

// enqueue hands new messages to the scheduler. The caller holds e.mu.
func (e *endpoint) enqueueLocked(m *message) {
	heap.Push(&e.queue, m)
}

// attempt sends m once and records the outcome.
func (e *endpoint) attempt(ctx context.Context, m *message, body []byte) {
	defer e.attempts.Done()
	status, retryAfter, err := e.send(ctx, m.id, body)
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.notify()
	e.inflight--
	if err != nil && ctx.Err() != nil {
		return // stopped: not an attempt; the message stays in the outbox
	}
	now := e.now()
	switch {
	case err == nil && status >= 200 && status < 300:
		e.box.ack(m, status, now)
		e.box.flush() // a kill now must not send it again
		if e.limit < e.s.concurrency {
			e.limit++
		}
		return
	case e.box.offURL != "":
		m.status = status
		e.box.deadLetter(m, "endpoint disabled: "+e.box.offWhy, now)
		e.box.flush()
		return
	case status == http.StatusGone:
		m.attempts++
		m.status = status
		why := fmt.Sprintf("%s answered 410 Gone at %s", e.s.url, now.UTC().Format(time.RFC3339))
		e.log.Warn("webhook endpoint answered 410 Gone: disabled, its changes go to the dead letters; change the URL or remove the \"off\" line of the outbox log to enable it", "outbox", e.s.outbox)
		e.box.disable(e.s.url, why)
		e.box.deadLetter(m, "endpoint disabled: "+why, now)
		for e.queue.Len() > 0 {
			q := heap.Pop(&e.queue).(*message)
			e.box.deadLetter(q, "endpoint disabled: "+why, now)
		}
		e.box.flush()
		return
	}
	m.attempts++
	m.status = status
	m.err = ""
	if err != nil {
		m.err = err.Error()
	}
	reason := describe(status, err)
	if m.attempts >= len(e.s.schedule) {
		e.log.Warn("webhook change given up, see the outbox's dead letters", "id", m.id, "attempts", m.attempts, "last", reason, "outbox", e.s.outbox)
		e.box.deadLetter(m, fmt.Sprintf("%d attempts failed, the last with %s", m.attempts, reason), now)
		e.box.flush()
		return
	}
	delay := jitter(e.s.schedule[m.attempts], e.s.jitter, e.rng())
	if retryAfter > delay {
		delay = retryAfter
	}
	m.next = now.Add(delay)
	if slows(status) || retryAfter > 0 {
		e.limit = max(1, e.limit/2)
		pause := retryAfter
		if pause == 0 {
			pause = min(delay, maxSlowPause)
		}
		if p := now.Add(pause); p.After(e.pause) {
			e.pause = p
		}
	}
	e.log.Debug("webhook attempt failed", "id", m.id, "attempt", m.attempts, "reason", reason, "retry_in", delay)
	e.box.attempted(m)
	e.box.flush()
	heap.Push(&e.queue, m)
}

// slows reports the statuses after which the endpoint is slowed down.
func slows(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusBadGateway || status == http.StatusGatewayTimeout
}

func describe(status int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("status %d %s", status, http.StatusText(status))
}

// jitter returns d moved by up to share of itself, r in [0, 1).
func jitter(d time.Duration, share, r float64) time.Duration {
	return time.Duration(float64(d) * (1 + share*(2*r-1)))
}

// send makes one signed request; status is 0 when there is no response.
func (e *endpoint) send(ctx context.Context, id string, body []byte) (status int, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.s.timeout)
	defer cancel()
	ts := e.now().Unix()
	sig, err := e.s.signer.sign(id, ts, body)
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.s.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("user-agent", userAgent)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := e.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no response within %s", e.s.timeout)
		}
		return 0, 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxReadBody))
	resp.Body.Close()
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), e.now()), nil
}

// parseRetryAfter reads a Retry-After value, seconds or an HTTP date; 0
// when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// drain waits until nothing is pending, or until what is pending cannot
// be sent before the deadline, or ctx ends; it returns how many messages
// remain pending.
func (e *endpoint) drain(ctx context.Context, deadline time.Time) int {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	poll := time.NewTicker(drainPoll)
	defer poll.Stop()
	for {
		e.mu.Lock()
		left := len(e.box.pending)
		hopeless := e.inflight == 0 && e.queue.Len() > 0 && e.queue[0].next.After(deadline) ||
			e.inflight == 0 && e.pause.After(deadline)
		e.mu.Unlock()
		if left == 0 || hopeless {
			return left
		}
		select {
		case <-ctx.Done():
			return left
		case <-timer.C:
			return left
		case <-poll.C:
		}
	}
}

// queue is a heap of messages by next attempt time, then acceptance order.
type queue []*message

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].next.Equal(q[j].next) {
		return q[i].next.Before(q[j].next)
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) {
	m := x.(*message)
	m.index = len(*q)
	*q = append(*q, m)
}
func (q *queue) Pop() any {
	old := *q
	m := old[len(old)-1]
	old[len(old)-1] = nil
	m.index = -1
	*q = old[:len(old)-1]
	return m
}

func sortBySeq(ms []*message) {
	slices.SortFunc(ms, func(a, b *message) int { return int(a.seq - b.seq) })
}
