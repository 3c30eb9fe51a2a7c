// Package openrc lets stock OpenRC drive gosv: it reads init scripts and
// their configuration the way openrc-run does, turns a service described
// with OpenRC's variables into a gosv service directory, and runs the small
// helpers that directory uses.
//
// OpenRC itself is never patched. A hook sourced by openrc-run.sh
// (/etc/rc.conf.d/gosv.conf, embedded here as [Hook]) sends start, stop,
// status and reload of every script that sets supervisor=gosv to
// `gosv openrc …`, passing the live shell values of the variables listed in
// [Vars]. For the commands that run outside openrc-run (`gosv openrc check`,
// `gosv openrc ls`) the package resolves the same values statically: it
// parses the script and its configuration files with mvdan.cc/sh/v3 and runs
// them in a sandboxed interpreter that executes no external command. A value
// that depends on such a command is reported as unresolved, with its
// position, and never guessed. The sandbox is a child process with hard
// limits on time, memory and what it reads ([ResolveAll]), so that no
// script can hang or exhaust the commands that resolve it.
//
// The pieces, in the order a service meets them:
//   - [Resolve]: sources and variables, as openrc-run.sh orders them;
//   - [ResolveDefaults]: the gosv-wide defaults of /etc/conf.d/gosv-svscan
//     ([DefaultVars]), for what a service leaves unset;
//   - [Service.Spec]: the typed, validated configuration ([Spec]);
//   - [Check]: lints with file:line:col positions;
//   - [Generate]: the service directory under $RC_SVCDIR/gosv-services;
//   - [Exec] and [Finish]: the generated run and finish (the exec helper,
//     and what the supervisor's restart policy decided, told to OpenRC);
//   - [RC]: OpenRC's own state files (daemons/, options/, marks).
//
// The package has no global state; its functions are safe for concurrent
// use unless documented otherwise.
package openrc
