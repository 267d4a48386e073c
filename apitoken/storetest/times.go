package storetest

import (
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// ---- times ----

func testTimeRoundTrip(t *testing.T, s apitoken.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	local := time.Date(2025, 6, 30, 23, 59, 59, 123456789, zone)
	want := local.Truncate(time.Microsecond).UTC()

	u, err := s.UpdateUser(t.Context(), "alice", func(u *apitoken.User, created bool) ([]apitoken.Log, error) {
		u.CreatedAt = local
		return []apitoken.Log{{Subject: "alice", Activity: apitoken.ActivityUserUpdate, ActivityOn: local, ActivityBy: "root"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gotU, _ := s.GetUser(t.Context(), "alice")
	users, _, _ := s.ListUsers(t.Context(), apitoken.UserFilter{Page: apitoken.Page{}})
	for what, tm := range map[string]time.Time{"UpdateUser": u.CreatedAt, "GetUser": gotU.CreatedAt, "ListUsers": users[0].CreatedAt} {
		if !tm.Equal(want) || !isUTC(tm) || tm != want {
			t.Errorf("%s CreatedAt = %v (%s), want %v in UTC", what, tm, tm.Location(), want)
		}
	}

	tok := newToken("alice", "timed", local)
	l1, l2, l3, l4 := local.Add(time.Hour), local.Add(2*time.Hour), local.Add(3*time.Hour), local.Add(4*time.Hour)
	tok.GeneratedAt, tok.GeneratedExp = &l1, &l2
	tok.JTIHash = hash("t")
	createToken(t, s, tok)
	updated, err := s.UpdateToken(t.Context(), tok.ID, func(tk *apitoken.Token) (apitoken.Log, error) {
		tk.RevokedAt, tk.RevokedBy = &l3, "root"
		return apitoken.Log{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recordAuth(t, s, apitoken.AuthRecord{TokenID: tok.ID, ActivityBy: "app", Result: apitoken.ResultOK, ClientIP: "192.0.2.1",
		Window: local, First: l4, Last: l4, Count: 1})
	wantTok := stored(tok)
	wantTok.RevokedAt, wantTok.RevokedBy = utcPtr(&l3), "root"
	sameToken(t, "UpdateToken's result", updated, wantTok)
	wantTok.LastUsedAt, wantTok.LastUsedIP = utcPtr(&l4), "192.0.2.1"
	sameToken(t, "GetToken", mustGetToken(t, s, tok.ID), wantTok)
	listed := allTokens(t, s, apitoken.TokenFilter{Now: local})
	if len(listed) != 1 {
		t.Fatalf("listed %d tokens", len(listed))
	}
	sameToken(t, "ListTokens", listed[0], wantTok)

	for _, l := range allLogs(t, s, apitoken.LogFilter{}) {
		if !isUTC(l.ActivityOn) || !isUTC(l.LastOn) {
			t.Errorf("log %d times are not in UTC: %v, %v", l.ID, l.ActivityOn, l.LastOn)
		}
		var wantOn time.Time
		switch l.Activity {
		case apitoken.ActivityUserUpdate, apitoken.ActivityCreate:
			wantOn = want
		case apitoken.ActivityAuthenticate:
			wantOn = utc(l4)
		}
		if l.ActivityOn != wantOn || l.LastOn != wantOn {
			t.Errorf("%s log times = %v, %v; want %v", l.Activity, l.ActivityOn, l.LastOn, wantOn)
		}
	}
}
