/** Checks shared by create and edit: files a person names, and limits of this host. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { ErrorCode, errors, type SettingField } from '../../common/errors';
import type { LibraryName } from '../../common/models/vm-settings';
import type { QemuImg } from '../disks/qemu-img';
import { makeUefiVars as makeVarsStore } from '../disks/uefi-vars';
import type { Library } from './library';
import { nameOf } from './resolve';

/** The file at `p` exists, is a file (or block device) and is readable.
 *  @throws VivariumError invalid-argument on `field`, with a sentence naming `what` ("ISO image"). */
export async function assertReadableFile(field: SettingField, what: string, p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(p);
  } catch {
    throw errors.field(ErrorCode.InvalidArgument, field, `${what} not found: ${p}. Check the path and try again.`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw errors.field(ErrorCode.InvalidArgument, field, `${what} ${p} is not a file. Give the path of the ${what.toLowerCase()} file.`);
  try {
    await fsp.access(p, fs.constants.R_OK);
  } catch {
    throw errors.field(ErrorCode.InvalidArgument, field, `${what} ${p} is not readable by you. Fix its permissions and try again.`);
  }
}

/** The names in the library, for the name rule (broken bundles with a readable name count too). */
export function libraryNames(library: Library): LibraryName[] {
  return library.entries().flatMap((e) => {
    const name = nameOf(e);
    return name === null ? [] : [{ id: e.id, name }];
  });
}

/** A locally administered MAC in QEMU's 52:54:00 range. */
export function randomMac(): string {
  const b = randomBytes(3);
  return `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

/** A VM's own UEFI variable store, copied from the firmware's template as qcow2 (one home:
 *  disks/uefi-vars.ts, which also rebuilds it at start when it is missing). */
export async function makeUefiVars(qemuImg: QemuImg, template: string, format: 'raw' | 'qcow2', dest: string): Promise<void> {
  await makeVarsStore(qemuImg, { varsTemplate: template, varsFormat: format }, dest);
}
