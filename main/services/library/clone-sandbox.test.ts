/**
 * The clone's user-data (pure): a new /etc/machine-id at its first boot through one bootcmd entry in
 * Vivarium's #cloud-config part; the user's own parts unchanged; never added twice.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { mimeMultipart, splitUserData } from '../provisioning/cloud-init';
import { MACHINE_ID_BOOTCMD, withMachineIdReset } from './clone-sandbox';

describe('withMachineIdReset', () => {
  it('puts the reset first in the bootcmd of a plain #cloud-config, keeping the rest', () => {
    const src = '#cloud-config\nhostname: dev\nbootcmd:\n  - [cloud-init-per, instance, vivarium-host-keys, sh, -c, "true"]\n';
    const out = withMachineIdReset(src);
    expect(out.startsWith('#cloud-config\n')).toBe(true);
    expect(parse(out)).toEqual({ hostname: 'dev', bootcmd: [[...MACHINE_ID_BOOTCMD], ['cloud-init-per', 'instance', 'vivarium-host-keys', 'sh', '-c', 'true']] });
    expect(withMachineIdReset(out)).toBe(out); // a clone of a clone: not twice
  });

  it('in a MIME multi-part user-data, changes only the first #cloud-config part (Vivarium\'s)', () => {
    const user = '#!/bin/sh\necho from the user\n';
    const src = mimeMultipart([
      { type: 'text/cloud-config', filename: 'vivarium.yaml', body: '#cloud-config\nhostname: dev\n' },
      { type: 'text/x-shellscript', filename: 'user-data', body: user },
    ]);
    const parts = splitUserData(withMachineIdReset(src));
    expect(parts).toHaveLength(2);
    expect(parse(parts[0]!.body)).toEqual({ hostname: 'dev', bootcmd: [[...MACHINE_ID_BOOTCMD]] });
    expect(parts[1]).toEqual({ type: 'text/x-shellscript', filename: 'user-data', body: user });
  });

  it('leaves a user-data without a #cloud-config part as it is', () => {
    expect(withMachineIdReset('#!/bin/sh\ntrue\n')).toBe('#!/bin/sh\ntrue\n');
  });
});
