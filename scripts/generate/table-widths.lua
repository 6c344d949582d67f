-- A pandoc filter for the man page made from docs/language.md: gives every table column a
-- width in proportion to its longest cell (at least its longest word), so that tbl wraps long
-- cells within the page instead of laying the table out wider than it (GitHub-flavoured
-- Markdown tables carry no widths, and without them tbl sizes columns by guesswork).

local function measure(cell)
  local text = pandoc.utils.stringify(cell.contents)
  local word = 0
  for w in text:gmatch("%S+") do word = math.max(word, utf8.len(w) or #w) end
  return utf8.len(text) or #text, word
end

function Table(t)
  local n = #t.colspecs
  local longest, widest_word = {}, {}
  for i = 1, n do longest[i], widest_word[i] = 1, 1 end
  local function visit(rows)
    for _, row in ipairs(rows) do
      for i, cell in ipairs(row.cells) do
        local length, word = measure(cell)
        longest[i] = math.max(longest[i], length)
        widest_word[i] = math.max(widest_word[i], word)
      end
    end
  end
  visit(t.head.rows)
  for _, body in ipairs(t.bodies) do visit(body.body) end
  -- Each column gets its longest word, then a share of the rest of the line in proportion
  -- to how much longer its longest cell is (capped, so one long column leaves the others
  -- room). pandoc writes a width w as tbl's lw(w*70n); an 80-column terminal shows 73n of
  -- text, and tbl puts 3n between columns.
  local room = 68 - 3 * (n - 1)
  local least, extra, total_least, total_extra = {}, {}, 0, 0
  for i = 1, n do
    least[i] = widest_word[i] + 1
    extra[i] = math.max(math.min(longest[i], 120) - least[i], 0)
    total_least = total_least + least[i]
    total_extra = total_extra + extra[i]
  end
  local spare = math.max(room - total_least, 0)
  for i = 1, n do
    local width = least[i] + (total_extra > 0 and spare * extra[i] / total_extra or 0)
    t.colspecs[i] = { t.colspecs[i][1], width / 70 }
  end
  return t
end
