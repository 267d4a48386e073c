// Package storetest is the conformance suite of apitoken.Store: every backend
// runs it from its own tests with storetest.Run, so that all of them keep the
// same contract (the comments of apitoken.Store).
package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Run runs the suite. newStore must return an empty store of the subtest's
// own: the subtests run in parallel. Run closes it at the end of each
// subtest.
func Run(t *testing.T, newStore func(t *testing.T) apitoken.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s apitoken.Store)
	}{
		// Users.
		{"GetUserOfUnknownIDIsNotFound", testGetUserUnknown},
		{"UpdateUserHandsAMissingUserToFnAsCreated", testUpdateUserCreates},
		{"UpdateUserHandsTheStoredUserToFn", testUpdateUserExisting},
		{"UpdateUserWritesNothingWhenFnFails", testUpdateUserFnError},
		{"UserRolesRoundTripSorted", testUserRoles},
		{"UpdateUserWritesTheLogsFnReturns", testUpdateUserLogs},
		{"ListUsersIsNewestFirstAndPaginates", testListUsers},
		{"UserIdentityFieldsRoundTrip", testUserIdentityRoundTrip},
		{"ListUsersFiltersByKindAndText", testListUsersFilters},

		// Tokens.
		{"CreateTokenNeedsAnExistingOwner", testCreateTokenNeedsOwner},
		{"CreateTokenWithATakenIDIsConflict", testCreateTokenTakenID},
		{"TokenRoundTripsEveryField", testTokenRoundTrip},
		{"CreateTokenWritesItsLog", testCreateTokenLog},
		{"GetTokenOfUnknownIDIsNotFound", testGetTokenUnknown},
		{"DuplicateNameAmongLiveTokensIsConflict", testDuplicateName},
		{"RevokedTokenFreesItsName", testRevokedFreesName},
		{"CreateTokenPastTheLimitOfLiveTokensIsRefused", testTokenLimit},
		{"ConcurrentCreatesNeverExceedTheLimit", testTokenLimitConcurrent},
		{"RenameToALiveNameIsConflict", testRenameConflict},
		{"UpdateTokenOfUnknownIDIsNotFound", testUpdateTokenUnknown},
		{"UpdateTokenWritesNothingWhenFnFails", testUpdateTokenFnError},
		{"UpdateTokenWritesTheTokenAndItsLog", testUpdateTokenWrites},
		{"UpdateTokenWithoutActivityWritesNoLog", testUpdateTokenNoLog},
		{"UpdateTokenKeepsTheFieldsFnMayNotChange", testUpdateTokenProtectedFields},
		{"ConcurrentGenerationsLeaveExactlyTheLastCommittedHash", testConcurrentGenerations},
		{"UpdateTokenWritesAndClearsThePreviousJWT", testPreviousJWTRoundTrip},
		{"ListTokensIsNewestFirstAndPaginates", testListTokens},
		{"ListTokensFiltersByStatusAtNow", testListTokensByStatus},
		{"ListTokensRefusesAnUnknownStatus", testListTokensUnknownStatus},

		// Logs.
		{"ListLogsFiltersAndPaginatesNewestFirst", testListLogs},
		{"ListLogsFiltersByOwnerAndResult", testListLogsByOwnerAndResult},
		{"PageLimitDefaultsAndIsClamped", testPageLimits},
		{"MalformedCursorIsInvalid", testMalformedCursor},
		{"RecordAuthCoalescesIdenticalAttempts", testRecordAuthCoalesces},
		{"RecordAuthKeepsAtMostMaxRowsPerTokenAndWindow", testRecordAuthBound},
		{"RecordAuthMovesLastUsedForwardOnly", testRecordAuthLastUsed},
		{"RecordAuthOfThePreviousJWTLeavesLastUsed", testRecordAuthPreviousJWT},
		{"RecordAuthSkipsUnknownTokens", testRecordAuthUnknownToken},
		{"RecordAuthAppliesABatchIDOnce", testRecordAuthBatchIDOnce},
		{"ConcurrentRecordAuthCountsSumExactly", testRecordAuthConcurrent},

		// Times.
		{"TimesRoundTripToTheMicrosecondInUTC", testTimeRoundTrip},
	}
	tests = append(tests, outboxTests...) // outbox.go
	tests = append(tests, changeTests...) // changes.go
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing the store: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// t0 is the base of every time in the suite: fixed, so that nothing depends
// on the wall clock, and long past, so that a store comparing with the wall
// clock instead of TokenFilter.Now gets statuses wrong.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

var errBoom = errors.New("boom: fn refused")
