/** The `console` service: single-use URLs for a VM's serial console and display streams. */
import { z } from 'zod';
import { VmRef, lazyTuples, type ServiceSchema } from './shared';

/** 'terminal': an SSH session in a cloud-init sandbox (issue 11; main/server/terminal-stream.ts). */
export const StreamKind = z.enum(['serial', 'vnc', 'terminal']);
export type StreamKind = z.infer<typeof StreamKind>;

export const StreamOptions = z
  .object({
    /** Serial only: first send what the guest already wrote (default true; a terminal attach that
     *  only wants what comes next says false). */
    history: z.boolean().optional(),
  })
  .strict();
export type StreamOptions = z.infer<typeof StreamOptions>;

export interface ConsoleService {
  /**
   * A single-use WebSocket URL carrying the raw bytes of a VM's serial console or VNC display
   * (the engine relays the unix socket; QEMU never listens on TCP). The ticket in the URL expires
   * after 30 s if unused.
   */
  openStream(ref: string, kind: StreamKind, options?: StreamOptions): Promise<{ readonly url: string }>;
}

export const consoleSchema: ServiceSchema<ConsoleService> = {
  methods: lazyTuples({ openStream: () => z.tuple([VmRef, StreamKind, StreamOptions.optional()]) }),
  events: [],
};
