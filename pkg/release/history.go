package release

import "time"

// MaxHistory is how many head moves a channel keeps; older ones are dropped.
const MaxHistory = 200

// Causes of a head move.
const (
	CausePublish  = "publish"
	CausePromote  = "promote"
	CauseRollback = "rollback"
	CausePin      = "pin"
	CauseUnpin    = "unpin"
)

// HeadMove is one change of a channel's head or pin, recorded in the same
// transaction as the change itself.
type HeadMove struct {
	// ID numbers the channel's moves from 1, in the order they committed.
	ID uint64    `json:"id"`
	At time.Time `json:"at"`
	// By names the token identity that asked for the move.
	By    string `json:"by,omitempty"`
	Cause string `json:"cause"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	// Pinned is the pin after the move (empty: not pinned).
	Pinned string `json:"pinned,omitempty"`
	// Undoes, on a plain rollback, is the ID of the move it undid.
	Undoes uint64 `json:"undoes,omitempty"`
}

// History is a channel's head moves with the state that derives from them.
// It lives in the channel record, beside Channel, and is changed only by
// the transactions that move the head.
type History struct {
	// Moves are the newest MaxHistory moves, oldest first.
	Moves []HeadMove `json:"moves,omitempty"`
	// NextID is the ID the next move gets.
	NextID uint64 `json:"nextID,omitempty"`
	// PinnedFrom is the head just before the current pin was set.
	PinnedFrom string `json:"pinnedFrom,omitempty"`
	// PromotedWhilePinned is the newest release published with promotion
	// while the channel was pinned: where unpin moves the head.
	PromotedWhilePinned string `json:"promotedWhilePinned,omitempty"`
}

// Record appends a move from (head, pin) before to ch's head and pin now,
// if either changed, and keeps the pin bookkeeping. It returns the move.
func (h *History) Record(before, after Channel, at time.Time, by, cause string) (HeadMove, bool) {
	if before.Head == after.Head && before.Pinned == after.Pinned {
		return HeadMove{}, false
	}
	if after.Pinned != "" && before.Pinned == "" {
		h.PinnedFrom, h.PromotedWhilePinned = before.Head, ""
	}
	if after.Pinned == "" {
		h.PinnedFrom, h.PromotedWhilePinned = "", ""
	}
	if h.NextID == 0 {
		h.NextID = 1
	}
	mv := HeadMove{ID: h.NextID, At: at, By: by, Cause: cause, From: before.Head, To: after.Head, Pinned: after.Pinned}
	h.NextID++
	h.Moves = append(h.Moves, mv)
	if len(h.Moves) > MaxHistory {
		h.Moves = append([]HeadMove(nil), h.Moves[len(h.Moves)-MaxHistory:]...)
	}
	return mv, true
}

// Undoable is the newest move a plain rollback would undo: the newest one
// that is not itself a plain rollback and that no plain rollback undid.
func (h *History) Undoable() (HeadMove, bool) {
	undone := map[uint64]bool{}
	for _, mv := range h.Moves {
		if mv.Undoes != 0 {
			undone[mv.Undoes] = true
		}
	}
	for i := len(h.Moves) - 1; i >= 0; i-- {
		mv := h.Moves[i]
		if mv.Undoes == 0 && !undone[mv.ID] && mv.From != mv.To {
			return mv, true
		}
	}
	return HeadMove{}, false
}
