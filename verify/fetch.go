package verify

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/glovebox/glovebox/client"
)

// extend fetches the tiles that grow the verified tree to cp (already checked) and hands them to
// Tree.Extend. On success the tree grows to cp.Size.
func (a *auditor) extend(ctx context.Context, cp Checkpoint) error {
	var tiles map[string][]byte
	if cp.Size > a.tree.Size() {
		paths := TilesFor(a.tree.Size(), cp.Size)
		bodies, err := a.fetchAll(ctx, paths)
		if err != nil {
			return err
		}
		tiles = make(map[string][]byte, len(paths))
		for i, p := range paths {
			tiles[p] = bodies[i]
		}
	}
	next, err := a.tree.Extend(cp, tiles)
	if err != nil {
		return err
	}
	a.tree = next
	return nil
}

// fetchAll downloads the log paths with at most maxInFlight requests in flight and returns the bodies in
// order. The first error stops it.
func (a *auditor) fetchAll(ctx context.Context, paths []string) ([][]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([][]byte, len(paths))
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards done and firstErr
		done     int64
		firstErr error
	)
	for range min(maxInFlight, len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body, err := a.fetch(ctx, paths[i])
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fail(StageDownload, "couldn't fetch /log/%s: %w", paths[i], err)
					cancel()
				}
				out[i] = body
				done++
				a.progress(ProgressDownload, done, int64(len(paths)))
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range paths {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(StageDownload, "%w", err)
	}
	return out, nil
}

// fetch downloads one log path, retrying network and server errors.
func (a *auditor) fetch(ctx context.Context, path string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		body, err := a.c.Tile(ctx, path)
		var ae *client.APIError
		if err == nil || attempt == fetchAttempts || ctx.Err() != nil || errors.As(err, &ae) && ae.Status < 500 {
			return body, err
		}
		select {
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
