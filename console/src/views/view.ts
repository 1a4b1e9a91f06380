/** A panel of the console: its element, and what to stop when the session ends. */
export interface View {
  element: HTMLElement;
  stop(): void;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function time(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}
