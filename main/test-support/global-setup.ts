// Replaced by the test-guest work: builds the tiny Linux guest once per run.
export default async function setup(): Promise<void> {}
