package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// readRecord reads a view's record, or returns ErrNoView.
func (v *Views) readRecord(volumeID, podUID string) (ViewRecord, error) {
	path := v.layout.ViewRecord(volumeID, podUID)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ViewRecord{}, ErrNoView
	}
	if err != nil {
		return ViewRecord{}, err
	}
	var rec ViewRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return ViewRecord{}, fmt.Errorf("record %s: %w", path, err)
	}
	if rec.VolumeID != volumeID || rec.PodUID != podUID {
		return ViewRecord{}, fmt.Errorf("record %s names view %s/%s", path, rec.VolumeID, rec.PodUID)
	}
	if err := rec.validateFields(); err != nil {
		// Not wrapped: a damaged record is our fault, not the caller's
		// invalid argument.
		return ViewRecord{}, fmt.Errorf("record %s is damaged: %s", path, err.Error())
	}
	return rec, nil
}

// A view's record is replaced in four steps: 1. write .<pod-uid>.json.tmp
// (no pod UID starts with '.', so the temp never collides with another
// view's files: writeRecordTmp), 2. fsync it (Create does, with the view's
// directories), 3. rename it over <pod-uid>.json, 4. fsync views/<volume>
// (commitRecord).

// writeRecordTmp is step 1; it returns the temp's path.
func (v *Views) writeRecordTmp(spec ViewRecord) (string, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	tmp := recordTmp(v.layout, spec.VolumeID, spec.PodUID)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600) // (1)
	if err != nil {
		return "", err
	}
	_, err = f.Write(raw)
	if err = errors.Join(err, f.Close()); err != nil {
		return "", errors.Join(err, os.Remove(tmp))
	}
	return tmp, nil
}

// commitRecord is steps 3 and 4, once the temp is fsynced.
func (v *Views) commitRecord(spec ViewRecord) error {
	path, tmp := v.layout.ViewRecord(spec.VolumeID, spec.PodUID), recordTmp(v.layout, spec.VolumeID, spec.PodUID)
	if err := os.Rename(tmp, path); err != nil { // (3)
		return errors.Join(err, os.Remove(tmp))
	}
	return syncDir(filepath.Dir(path)) // (4)
}

func recordTmp(l Layout, volumeID, podUID string) string {
	return filepath.Join(l.ViewsDir(), volumeID, "."+podUID+recordSuffix+".tmp")
}
