/**
 * The stop ladder's "agent" rung (drivers/qemu/stop-ladder.ts): when the guest ignored the ACPI power
 * button, ask qemu-guest-agent to power it off (guest-shutdown, mode powerdown; QEMU's
 * qga/qapi-schema.json). Throws when no agent answers, so the ladder goes on to QMP quit.
 */
import { GuestAgentClient } from '../qemu/guest-agent';

/** How long to wait for an agent to answer before the rung counts as failed. */
export const AGENT_CONNECT_MS = 3_000;

export async function agentShutdown(qgaSocket: string): Promise<void> {
  const agent = await GuestAgentClient.connect(qgaSocket, { timeoutMs: AGENT_CONNECT_MS });
  try {
    await agent.shutdown();
  } finally {
    agent.close();
  }
}
