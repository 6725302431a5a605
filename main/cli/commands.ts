/** The command table: each command's flags, help, and how it maps onto the contract. */
import type { CommandSpec } from './args';
import { MEDIA_COMMANDS } from './media-commands';
import { SANDBOX_COMMANDS, SANDBOX_CREATE_FLAGS } from './sandbox-commands';
import { SNAPSHOT_COMMANDS } from './snapshot-commands';
import { HARDWARE_COMMANDS } from './hardware-commands';

const VM = 'NAME';

const createFlags = {
  arch: { type: 'string', value: 'x86_64|aarch64', help: 'guest architecture (default: the host\'s)' },
  cpus: { type: 'number', value: 'N', help: 'virtual CPUs (default 2)' },
  memory: { type: 'string', value: 'SIZE', help: 'memory, e.g. 512M or 2G (default 2G)' },
  accel: { type: 'string', value: 'auto|kvm|hvf|tcg', help: 'accelerator (default auto: KVM/HVF where it really works, else TCG)' },
  firmware: { type: 'string', value: 'bios|uefi', help: 'firmware (default bios on x86_64, uefi on aarch64)' },
  'disk-size': { type: 'string', value: 'SIZE', help: 'size of a new empty disk, e.g. 8G; 0 for none (default 20G)' },
  disk: { type: 'string', value: 'PATH', help: 'use an existing qcow2/raw image in place instead of a new disk' },
  iso: { type: 'string', value: 'PATH', help: 'attach an ISO as a CD-ROM and boot from it' },
  kernel: { type: 'string', value: 'PATH', help: 'boot this kernel directly' },
  initrd: { type: 'string', value: 'PATH', help: 'initial ramdisk for --kernel' },
  append: { type: 'string', value: 'STR', help: 'kernel command line for --kernel' },
  net: { type: 'string', value: 'user|none', help: 'networking (default user: NAT)' },
  forward: { type: 'string', multiple: true, value: 'tcp:HOSTPORT:GUESTPORT', help: 'forward a host port (bound to 127.0.0.1) to the guest; repeatable' },
  display: { type: 'string', value: 'vnc|none', help: 'graphical display (default vnc)' },
  os: { type: 'string', value: 'LABEL', help: 'a label for the guest OS, e.g. "Debian 12"' },
  import: { type: 'string', value: 'FILE', help: 'create from a disk image or appliance (qcow2, raw, vmdk, vdi, vhdx, vhd, ova, ovf): its disks, and an OVF\'s CPUs and memory' },
  copy: { type: 'boolean', help: 'with --import: convert its disks to qcow2 in the VM\'s folder (the default)' },
  attach: { type: 'boolean', help: 'with --import: use a qcow2 or raw image in place instead of a copy' },
  json: { type: 'boolean', help: 'print the new VM as JSON instead of its id' },
  'boot-menu': { type: 'boolean', help: 'show the firmware\'s boot menu at start' },
  tpm: { type: 'boolean', help: 'a TPM 2.0 (a per-VM swtpm; its state is kept in the VM\'s folder)' },
  ...SANDBOX_CREATE_FLAGS,
} as const;

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  doctor: {
    usage: 'doctor [--json]',
    summary: 'Show what this host can run: QEMU binaries and versions, accelerators (and why one is unusable), firmware.',
    positionals: [],
    flags: { json: { type: 'boolean', help: 'print JSON' } },
  },
  create: {
    usage: 'create NAME [options]',
    summary: 'Create a VM. Prints its id.',
    positionals: [VM],
    flags: createFlags,
  },
  list: {
    usage: 'list [--json]',
    summary: 'List VMs: name, id, state, pid (running only), accelerator.',
    positionals: [],
    flags: { json: { type: 'boolean', help: 'print a JSON array of {name, id, state, pid, accel, lastExit, error}' } },
  },
  show: {
    usage: 'show NAME [--json]',
    summary: 'Show a VM: its config, runtime state and the exact QEMU command line.',
    positionals: [VM],
    flags: { json: { type: 'boolean', help: 'print JSON' } },
  },
  start: {
    usage: 'start NAME [--wait-serial REGEX] [--timeout SECONDS]',
    summary: 'Start a VM. Returns once QEMU runs (and, with --wait-serial, once the guest\'s serial output matches).',
    positionals: [VM],
    flags: {
      'wait-serial': { type: 'string', value: 'REGEX', help: 'wait until the serial console output matches this regular expression' },
      timeout: { type: 'number', value: 'SECONDS', help: 'give up waiting after this long (default 120)' },
      json: { type: 'boolean', help: 'print the VM as JSON' },
    },
  },
  stop: {
    usage: 'stop NAME [--force] [--timeout SECONDS]',
    summary: 'Shut a VM down: ACPI power button, wait, then QMP quit, SIGTERM, SIGKILL.',
    positionals: [VM],
    flags: {
      force: { type: 'boolean', help: 'power off at once, without asking the guest' },
      timeout: { type: 'number', value: 'SECONDS', help: 'how long the guest gets to shut down (default 30)' },
      json: { type: 'boolean', help: 'print the VM as JSON' },
    },
  },
  pause: { usage: 'pause NAME', summary: 'Pause a running VM (its vCPUs stop; memory is kept).', positionals: [VM], flags: {} },
  resume: { usage: 'resume NAME', summary: 'Resume a paused VM.', positionals: [VM], flags: {} },
  reset: { usage: 'reset NAME', summary: 'Hard-reset a running VM (like pressing its reset button).', positionals: [VM], flags: {} },
  serial: {
    usage: 'serial NAME [--log]',
    summary: 'Attach to the serial console (stdin/stdout; Ctrl-] detaches). With --log, print what the guest has written so far and exit.',
    positionals: [VM],
    flags: { log: { type: 'boolean', help: 'print the serial log and exit' } },
  },
  screenshot: {
    usage: 'screenshot NAME FILE.png',
    summary: 'Save a PNG of the guest\'s screen.',
    positionals: [VM, 'FILE'],
    flags: {},
  },
  edit: {
    usage: 'edit NAME [options]',
    summary: 'Change a stopped VM\'s settings.',
    positionals: [VM],
    flags: {
      name: { type: 'string', value: 'NEWNAME', help: 'rename the VM' },
      cpus: createFlags.cpus,
      memory: createFlags.memory,
      accel: createFlags.accel,
      firmware: createFlags.firmware,
      iso: createFlags.iso,
      'no-iso': { type: 'boolean', help: 'remove the CD-ROM' },
      kernel: createFlags.kernel,
      'no-kernel': { type: 'boolean', help: 'stop booting a kernel directly' },
      initrd: createFlags.initrd,
      append: createFlags.append,
      net: createFlags.net,
      forward: { ...createFlags.forward, help: 'replace the port forwards; repeatable' },
      'no-forwards': { type: 'boolean', help: 'remove all port forwards' },
      display: createFlags.display,
      os: createFlags.os,
      autostart: { type: 'boolean', help: 'start this VM when Vivarium starts (the app, or serve --autostart)' },
      'no-autostart': { type: 'boolean', help: 'stop starting this VM when Vivarium starts' },
      'boot-order': { type: 'string', value: 'disk,cd,net', help: 'what the firmware boots from, in order (default disk,cd: a blank disk falls through to the CD); a device left out is never booted' },
      'boot-menu': { type: 'boolean', help: 'show the firmware\'s boot menu at start' },
      'no-boot-menu': { type: 'boolean', help: 'stop showing the boot menu' },
      tpm: { type: 'boolean', help: 'add a TPM 2.0 (a per-VM swtpm)' },
      'no-tpm': { type: 'boolean', help: 'remove the TPM (its state stays in the VM\'s folder)' },
      json: { type: 'boolean', help: 'print the VM as JSON' },
    },
  },
  delete: {
    usage: 'delete NAME [--keep-disks]',
    summary: 'Delete a stopped VM and its files.',
    positionals: [VM],
    flags: { 'keep-disks': { type: 'boolean', help: 'keep its disk images (moved to <library>/kept-disks/)' } },
  },
  serve: {
    usage: 'serve [--host 127.0.0.1] [--port N] [--tls-cert FILE --tls-key FILE] [--autostart]',
    summary: 'Serve the Vivarium UI to a browser. Prints the URL (with its access token).',
    positionals: [],
    flags: {
      host: { type: 'string', value: 'ADDR', help: 'address to listen on (default 127.0.0.1)' },
      port: { type: 'number', value: 'N', help: 'port (default 8780; 0 picks a free one)' },
      'tls-cert': { type: 'string', value: 'FILE', help: 'PEM certificate: serve https (needed to use --host beyond this machine safely)' },
      'tls-key': { type: 'string', value: 'FILE', help: 'the PEM private key of --tls-cert' },
      autostart: { type: 'boolean', help: 'also start the VMs marked to start automatically (vivarium edit NAME --autostart)' },
    },
  },
  stats: {
    usage: 'stats [NAME] [--json] [--watch]',
    summary: 'Host and per-VM resource use, sampled over about a second.',
    positionals: [VM],
    optionalPositionals: 1,
    flags: {
      json: { type: 'boolean', help: 'print JSON' },
      watch: { type: 'boolean', help: 'keep printing a sample every second' },
    },
  },
  ...MEDIA_COMMANDS,
  ...SANDBOX_COMMANDS,
  ...SNAPSHOT_COMMANDS,
  ...HARDWARE_COMMANDS,
};
