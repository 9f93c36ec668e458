// Preact with htm: JSX-like templates without a build step.
import { h, render, createContext, Fragment } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export { h, render, createContext, Fragment };
export {
  useState, useEffect, useRef, useMemo, useCallback, useContext, useId,
} from "preact/hooks";
