package main

import (
	"os/exec"
	"path/filepath"
	"strings"
)

// contender is one download tool and its settings.
type contender struct {
	// Name is the column label: "hydra", "rclone", "rclone-tuned", ...
	Name string
	// Settings and Verifies describe the run for the report.
	Settings string
	Verifies string
	// tool is the binary hack/tools.sh builds for it, if any.
	tool string
	// command builds the command line that downloads shape s into dst, a
	// directory path that does not exist yet (its parent does).
	command func(b *bench, s shape, dst string) *exec.Cmd
}

// hydraName is the contender the goals are about.
const hydraName = "hydra"

// rclone's defaults, kept in the plain run, are --transfers 4 --checkers 8
// and 4 streams per file from 256 MiB up; the tuned run matches hydra's 16
// requests in flight and splits files from 64 MiB up.
var rcloneTuned = []string{"--transfers", "16", "--checkers", "16",
	"--multi-thread-streams", "16", "--multi-thread-cutoff", "64M"}

// contenders in the order each round runs them.
var contenders = []contender{
	{
		Name:     hydraName,
		Settings: "`hydra pull` defaults: 16 MiB ranged GETs, 16 in flight",
		Verifies: "every byte: part CRCs combined and compared with the manifest's CRC64NVME",
		command: func(b *bench, s shape, dst string) *exec.Cmd {
			cmd := exec.Command(filepath.Join(b.binDir, "hydra"), "--manager", b.managerURL, //nolint:gosec // G204: our own build
				"pull", channelOf(s)+"@"+benchVersion, dst)
			cmd.Env = append(cleanEnv("HYDRA_"), b.minio.awsEnv()...)
			cmd.Env = append(cmd.Env, b.cfg.hydraEnv...)
			if b.profileDir != "" {
				cmd.Env = append(cmd.Env, profileEnv+"="+filepath.Join(b.profileDir, s.ID()+"-"+filepath.Base(filepath.Dir(dst))+".pprof"))
			}
			return cmd
		},
	},
	{
		Name:     "rclone",
		tool:     "rclone",
		Settings: "`rclone copy` defaults: --transfers 4, --checkers 8, 4 streams per file ≥ 256 MiB",
		Verifies: "size, and MD5 against the ETag of single-part objects",
		command: func(b *bench, s shape, dst string) *exec.Cmd {
			return b.rclone(s, dst)
		},
	},
	{
		Name:     "rclone-tuned",
		tool:     "rclone",
		Settings: "`rclone copy " + strings.Join(rcloneTuned, " ") + "`",
		Verifies: "size, and MD5 against the ETag of single-part objects",
		command: func(b *bench, s shape, dst string) *exec.Cmd {
			return b.rclone(s, dst, rcloneTuned...)
		},
	},
	{
		Name:     "mc",
		tool:     "mc",
		Settings: "`mc cp --recursive` defaults",
		Verifies: "size only",
		command: func(b *bench, s shape, dst string) *exec.Cmd {
			cmd := exec.Command(filepath.Join(b.toolsDir, "mc"), "--config-dir", filepath.Join(b.workDir, "mc"), //nolint:gosec // G204: tools cache
				"--quiet", "--no-color", "cp", "--recursive", "minio/"+bucket+"/"+s.ID()+"/", dst+"/")
			cmd.Env = append(cleanEnv("MC_"), "MC_HOST_minio=http://"+b.minio.accessKey+":"+b.minio.secretKey+"@"+strings.TrimPrefix(b.minio.endpoint, "http://"))
			return cmd
		},
	},
	{
		Name:     "sdk",
		Settings: "aws-sdk-go-v2 `manager.Downloader` defaults (5 MiB parts, concurrency 5), one object at a time",
		Verifies: "nothing",
		command: func(b *bench, s shape, dst string) *exec.Cmd {
			return b.sdkget("default", s, dst)
		},
	},
	{
		Name:     "sdk-tuned",
		Settings: "`manager.Downloader` with 16 MiB parts, concurrency 16, 8 objects at a time, 128 pooled connections",
		Verifies: "nothing",
		command: func(b *bench, s shape, dst string) *exec.Cmd {
			return b.sdkget("tuned", s, dst)
		},
	},
}

// rclone copies the shape's prefix with a remote configured through the
// environment only, and an empty config file so nothing of the user's
// configuration applies.
func (b *bench) rclone(s shape, dst string, extra ...string) *exec.Cmd {
	args := append([]string{"copy", "minio:" + bucket + "/" + s.ID(), dst}, extra...)
	cmd := exec.Command(filepath.Join(b.toolsDir, "rclone"), args...) //nolint:gosec // G204: tools cache
	cmd.Env = append(cleanEnv("RCLONE_"),
		"RCLONE_CONFIG="+filepath.Join(b.workDir, "rclone.conf"),
		"RCLONE_CONFIG_MINIO_TYPE=s3",
		"RCLONE_CONFIG_MINIO_PROVIDER=Minio",
		"RCLONE_CONFIG_MINIO_ENDPOINT="+b.minio.endpoint,
		"RCLONE_CONFIG_MINIO_ACCESS_KEY_ID="+b.minio.accessKey,
		"RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY="+b.minio.secretKey,
		"RCLONE_CONFIG_MINIO_REGION="+region,
	)
	return cmd
}

func (b *bench) sdkget(mode string, s shape, dst string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(b.binDir, "sdkget"), "-mode", mode, //nolint:gosec // G204: our own build
		"s3://"+bucket+"/"+s.ID()+"/", dst)
	cmd.Env = append(cleanEnv(), b.minio.awsEnv()...)
	return cmd
}

// selectContenders picks contenders by name, in the standard order;
// hydra always runs, since every ratio is about it.
func selectContenders(names string) ([]contender, error) {
	if names == "" || names == "all" {
		return contenders, nil
	}
	want := map[string]bool{hydraName: true}
	for n := range strings.SplitSeq(names, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []contender
	for _, c := range contenders {
		if want[c.Name] {
			out = append(out, c)
			delete(want, c.Name)
		}
	}
	for n := range want {
		return nil, &unknownContender{name: n}
	}
	return out, nil
}

type unknownContender struct{ name string }

func (e *unknownContender) Error() string {
	names := make([]string, len(contenders))
	for i, c := range contenders {
		names[i] = c.Name
	}
	return "unknown contender " + e.name + " (have " + strings.Join(names, ", ") + ")"
}
