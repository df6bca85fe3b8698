package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
)

// waitTrigger polls a trigger's status until cond holds.
func waitTrigger(t *testing.T, c *client.Client, name string, within time.Duration, what string, cond func(api.TriggerStatus) bool) api.TriggerStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s, err := c.GetTrigger(context.Background(), name)
		if err == nil && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("trigger %s: %s not reached after %s: %+v, %v", name, what, within, s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestQueueTrigger consumes a stream on the node's NATS in batches: every
// message reaches the function, a poison message goes to the dead
// letters after its deliveries while the others flow, and bad triggers
// are refused with the problem named.
func TestQueueTrigger(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir())
	c := scheduleClient(n)
	ctx := context.Background()
	deployGuest(t, c, "consumer", 10)
	if _, err := c.PutStream(ctx, "jobs", api.PutStreamRequest{Subjects: []string{"jobs.>"}}); err != nil {
		t.Fatal(err)
	}

	for name, bad := range map[string]struct {
		tr   api.Trigger
		want string
	}{
		"missing stream":   {api.Trigger{Name: "q", Function: "consumer", Queue: &api.QueueSource{Stream: "nope"}}, "nope"},
		"missing function": {api.Trigger{Name: "q", Function: "ghost", Queue: &api.QueueSource{Stream: "jobs"}}, "ghost"},
		"no source":        {api.Trigger{Name: "q", Function: "consumer"}, "exactly one source"},
		"bad batch size":   {api.Trigger{Name: "q", Function: "consumer", Queue: &api.QueueSource{Stream: "jobs", BatchSize: 100000}}, "batch"},
		"bad name":         {api.Trigger{Name: "a b", Function: "consumer", Queue: &api.QueueSource{Stream: "jobs"}}, "a b"},
	} {
		_, err := c.CreateTrigger(ctx, bad.tr)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, bad.want) {
			t.Errorf("CreateTrigger(%s) = %v, want a 400 naming %q", name, err, bad.want)
		}
	}
	if list, err := c.ListTriggers(ctx); err != nil || len(list) != 0 {
		t.Fatalf("refused triggers were stored: %+v, %v", list, err)
	}

	if _, err := c.CreateTrigger(ctx, api.Trigger{Name: "jobs", Function: "consumer",
		Queue: &api.QueueSource{Stream: "jobs", BatchSize: 5, MaxDeliver: 2}}); err != nil {
		t.Fatal(err)
	}
	waitTrigger(t, c, "jobs", 10*time.Second, "running", func(s api.TriggerStatus) bool { return s.State == "running" })
	const good = 40
	for i := range good {
		if i == good/2 {
			if _, err := c.Publish(ctx, "jobs.work", []byte("poison"), nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Publish(ctx, "jobs.work", []byte(fmt.Sprintf(`{"n":%d}`, i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	s := waitTrigger(t, c, "jobs", 60*time.Second, "every message delivered and the poison dead-lettered",
		func(s api.TriggerStatus) bool { return s.Delivered >= good && s.DeadLettered == 1 })
	if s.Delivered != good {
		t.Logf("delivered %d for %d messages (at least once)", s.Delivered, good)
	}
	dls, err := c.ListDeadLetters(ctx, "consumer", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || !strings.Contains(string(dls[0].Payload), `"body":"poison"`) || dls[0].Attempts != 2 {
		t.Errorf("dead letters = %+v, want the poison message after 2 deliveries", dls)
	}

	// Deleting the trigger removes its durable consumer.
	if err := c.DeleteTrigger(ctx, "jobs"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTrigger(ctx, "jobs"); err == nil {
		t.Error("the trigger is still there after DeleteTrigger")
	}
	st, err := c.GetStream(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if st.Consumers != 0 {
		t.Errorf("stream jobs has %d consumers after the trigger was deleted, want 0", st.Consumers)
	}
}
