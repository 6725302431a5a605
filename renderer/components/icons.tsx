/** Small line icons, drawn on a 16×16 grid with currentColor so they follow the theme. They are
 *  decorative: every button that shows one also has a text label. */
import type { ReactNode } from 'react';

export type IconName =
  | 'play'
  | 'pause'
  | 'reset'
  | 'power'
  | 'plug'
  | 'keyboard'
  | 'camera'
  | 'sliders'
  | 'trash'
  | 'plus'
  | 'monitor'
  | 'terminal'
  | 'fit'
  | 'fullscreen'
  | 'clipboard'
  | 'pointer'
  | 'back'
  | 'open'
  | 'chart'
  | 'suspend'
  | 'copy'
  | 'export'
  | 'import';

const PATHS: Readonly<Record<IconName, ReactNode>> = {
  play: <path d="M5 3.5v9l7-4.5z" fill="currentColor" stroke="none" />,
  pause: (
    <>
      <rect x="4" y="3.5" width="2.6" height="9" rx="0.6" fill="currentColor" stroke="none" />
      <rect x="9.4" y="3.5" width="2.6" height="9" rx="0.6" fill="currentColor" stroke="none" />
    </>
  ),
  reset: (
    <>
      <path d="M12.5 8a4.5 4.5 0 1 1-1.3-3.2" />
      <path d="M12 2.5v2.8H9.2" />
    </>
  ),
  power: (
    <>
      <path d="M8 2v5.5" />
      <path d="M4.8 4.2a5 5 0 1 0 6.4 0" />
    </>
  ),
  plug: (
    <>
      <path d="M6 2v3M10 2v3" />
      <path d="M4 5h8v2.5a4 4 0 0 1-8 0z" />
      <path d="M8 11.5V14" />
    </>
  ),
  keyboard: (
    <>
      <rect x="1.5" y="4" width="13" height="8" rx="1.5" />
      <path d="M4 6.5h.01M6.5 6.5h.01M9 6.5h.01M11.5 6.5h.01M5 9.5h6" />
    </>
  ),
  camera: (
    <>
      <path d="M2 5.5h2.5L6 3.5h4l1.5 2H14v7H2z" />
      <circle cx="8" cy="8.8" r="2.2" />
    </>
  ),
  sliders: (
    <>
      <path d="M2.5 4.5h11M2.5 8h11M2.5 11.5h11" />
      <circle cx="5.5" cy="4.5" r="1.4" fill="var(--icon-fill, Canvas)" />
      <circle cx="10.5" cy="8" r="1.4" fill="var(--icon-fill, Canvas)" />
      <circle cx="6.5" cy="11.5" r="1.4" fill="var(--icon-fill, Canvas)" />
    </>
  ),
  trash: (
    <>
      <path d="M2.5 4.5h11M6 4.5V2.8h4v1.7" />
      <path d="M4 4.5l.7 9h6.6l.7-9" />
    </>
  ),
  plus: <path d="M8 3v10M3 8h10" />,
  monitor: (
    <>
      <rect x="1.5" y="2.5" width="13" height="9" rx="1.2" />
      <path d="M5.5 14h5M8 11.5V14" />
    </>
  ),
  terminal: (
    <>
      <rect x="1.5" y="2.5" width="13" height="11" rx="1.2" />
      <path d="M4.5 6.5 6.5 8l-2 1.5M8 10h3.5" />
    </>
  ),
  fit: <path d="M2.5 6V2.5H6M10 2.5h3.5V6M13.5 10v3.5H10M6 13.5H2.5V10" />,
  fullscreen: <path d="M2.5 6V2.5H6M2.5 2.5 6.5 6.5M10 2.5h3.5V6M13.5 2.5 9.5 6.5M13.5 10v3.5H10M13.5 13.5 9.5 9.5M6 13.5H2.5V10M2.5 13.5 6.5 9.5" />,
  clipboard: (
    <>
      <rect x="3" y="3" width="10" height="11" rx="1.2" />
      <path d="M6 3V2h4v1M5.5 7h5M5.5 9.5h5" />
    </>
  ),
  pointer: <path d="M4 2.5v10l2.8-2.6 1.9 4 1.7-.8-1.9-3.9H12z" />,
  back: <path d="M10 3 5 8l5 5" />,
  open: (
    <>
      <path d="M9 2.5h4.5V7M13.5 2.5 7.5 8.5" />
      <path d="M12 9.5v4H2.5V4h4" />
    </>
  ),
  chart: (
    <>
      <path d="M2.5 2.5v11h11" />
      <path d="M4.5 10.5 7 7.5l2 2 4-5" />
    </>
  ),
  // A moon: the VM sleeps on disk.
  suspend: <path d="M12.5 10.2A5.2 5.2 0 0 1 5.8 3.5a5.2 5.2 0 1 0 6.7 6.7z" />,
  copy: (
    <>
      <rect x="5.5" y="5.5" width="8" height="8" rx="1" />
      <path d="M10.5 5.5V3.5a1 1 0 0 0-1-1h-6a1 1 0 0 0-1 1v6a1 1 0 0 0 1 1h2" />
    </>
  ),
  export: (
    <>
      <path d="M8 10V2.5M5 5.5l3-3 3 3" />
      <path d="M2.5 9.5v3.5h11V9.5" />
    </>
  ),
  import: (
    <>
      <path d="M8 2.5V10M5 7l3 3 3-3" />
      <path d="M2.5 9.5v3.5h11V9.5" />
    </>
  ),
};

export function Icon({ name }: { readonly name: IconName }): ReactNode {
  return (
    <svg
      className="icon"
      viewBox="0 0 16 16"
      width="16"
      height="16"
      aria-hidden="true"
      focusable="false"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.5"
      strokeLinecap="round"
      strokeLinejoin="round"
    >
      {PATHS[name]}
    </svg>
  );
}
